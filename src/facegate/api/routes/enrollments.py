"""/v1/enroll: create a profile, add images to it, delete it for good; list and show them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facegate.api import presenters
from facegate.api.deps import ServicesDep, TenantDep
from facegate.api.envelope import ok
from facegate.api.payloads import count_image_fields, image_fields, validated
from facegate.api.routes import examples
from facegate.api.routes.docs import json_body, responses
from facegate.api.schemas import (
    EnrollCreate,
    EnrollmentIdOut,
    EnrollmentOut,
    EnrollmentPageOut,
    EnrollmentRef,
    EnrollUpdate,
)
from facegate.errors import BadRequest, TooManyImages
from facegate.service.enrollments import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/v1", tags=["enrollment"])
# In a multipart form the images are files img0 … img9 (documented; any count up to the limit).
IMAGE_FILES = tuple(f"img{i}" for i in range(10))


def _images(body: dict[str, object], services: ServicesDep) -> dict[str, bytes]:
    limit = services.settings.max_images_per_enrollment
    count = count_image_fields(body)
    # Counted before anything is decoded: an 11-image request costs nothing.
    if count > limit:
        raise TooManyImages(f"{count} images sent; at most {limit} are accepted per request")
    if count == 0:
        raise BadRequest("no image: send one to ten base64 images as img0, img1, …")
    return image_fields(body, max_bytes=services.settings.max_image_bytes)


@router.post(
    "/enroll",
    summary="Enroll a person from 1–10 images (the largest face of each)",
    responses=responses(
        EnrollmentIdOut,
        404,
        422,
        503,
        example=examples.ENROLLMENT_ID,
        message="enrollment processed successfully",
    ),
    openapi_extra=json_body(EnrollCreate, example=examples.ENROLL, files=IMAGE_FILES),
)
async def enroll(request: Request, tenant: TenantDep, services: ServicesDep) -> JSONResponse:
    payload, body = await validated(request, EnrollCreate)
    images = await run_in_threadpool(_images, body, services)
    enrollment_id = await services.inference.run(
        services.enrollments.create,
        tenant,
        images,
        name=payload.name,
        collection_id=payload.collection_id,
    )
    return ok({"enrollment_id": enrollment_id}, "enrollment processed successfully")


@router.put(
    "/enroll",
    summary="Add images to an enrollment",
    responses=responses(
        EnrollmentIdOut,
        404,
        422,
        503,
        example=examples.ENROLLMENT_ID,
        message="enrollment updated successfully",
    ),
    openapi_extra=json_body(EnrollUpdate, example=examples.ENROLL_UPDATE, files=IMAGE_FILES),
)
async def update_enrollment(
    request: Request, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    payload, body = await validated(request, EnrollUpdate)
    images = await run_in_threadpool(_images, body, services)
    enrollment_id = await services.inference.run(
        services.enrollments.add_images, tenant, payload.enrollment_id, images
    )
    return ok({"enrollment_id": enrollment_id}, "enrollment updated successfully")


@router.delete(
    "/enroll",
    summary="Delete an enrollment and its embeddings for good",
    responses=responses(str, 404, example=examples.ENROLLMENT_DELETED, message=None),
    openapi_extra=json_body(EnrollmentRef, example=examples.ENROLLMENT_REF),
)
async def delete_enrollment(
    request: Request, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    payload, _ = await validated(request, EnrollmentRef)
    await run_in_threadpool(services.enrollments.delete, tenant, payload.enrollment_id)
    return ok(f"Enrollment {payload.enrollment_id} has been deleted", None)


# GET answers carry no image: they are plain reads, outside the inference pool.
@router.get(
    "/enroll",
    summary="Your enrollments, a page at a time (names, image counts, collections, recipes)",
    responses=responses(
        EnrollmentPageOut, example=examples.ENROLLMENTS, message="enrollments listed successfully"
    ),
)
async def list_enrollments(
    tenant: TenantDep,
    services: ServicesDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="enrollments per page")
    ] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, description="how many to skip (oldest first)")] = 0,
) -> JSONResponse:
    page = await run_in_threadpool(services.enrollments.page, tenant, limit=limit, offset=offset)
    return ok(presenters.enrollment_page(page), "enrollments listed successfully")


@router.get(
    "/enroll/{enrollment_id}",
    summary="One enrollment",
    responses=responses(
        EnrollmentOut, 404, example=examples.ENROLLMENT, message="enrollment found"
    ),
)
async def show_enrollment(
    enrollment_id: str, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    view = await run_in_threadpool(services.enrollments.get, tenant, enrollment_id)
    return ok(presenters.enrollment(view), "enrollment found")

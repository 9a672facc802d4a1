"""/v1/collection (create, add a member, delete, list) and POST /v1/train."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facegate.api import presenters
from facegate.api.deps import ServicesDep, TenantDep
from facegate.api.envelope import ok
from facegate.api.payloads import validated
from facegate.api.routes import examples
from facegate.api.routes.docs import json_body, responses
from facegate.api.schemas import (
    CollectionCreate,
    CollectionIdOut,
    CollectionOut,
    CollectionRef,
    CollectionUpdate,
)
from facegate.service.collections import DEFAULT_ENROLLMENTS_LIMIT, MAX_ENROLLMENTS_LIMIT

router = APIRouter(prefix="/v1", tags=["collections"])


@router.post(
    "/collection",
    summary="Create a collection (unknowns: true for stricter unknown rejection)",
    responses=responses(
        CollectionIdOut,
        example=examples.COLLECTION_ID,
        message="collection created successfully",
    ),
    openapi_extra=json_body(CollectionCreate, example=examples.COLLECTION_CREATE),
)
async def create_collection(
    request: Request, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    payload, _ = await validated(request, CollectionCreate)
    collection_id = await run_in_threadpool(
        services.collections.create, tenant, payload.name, unknowns=payload.unknowns
    )
    return ok({"collection_id": collection_id}, "collection created successfully")


@router.put(
    "/collection",
    summary="Add an enrollment to a collection; the collection is retrained",
    responses=responses(
        CollectionIdOut,
        404,
        503,
        example=examples.COLLECTION_ID,
        message="collection updated successfully",
    ),
    openapi_extra=json_body(CollectionUpdate, example=examples.COLLECTION_UPDATE),
)
async def update_collection(
    request: Request, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    payload, _ = await validated(request, CollectionUpdate)
    collection_id = await run_in_threadpool(
        services.collections.add_enrollment, tenant, payload.collection_id, payload.enrollment_id
    )
    return ok({"collection_id": collection_id}, "collection updated successfully")


@router.delete(
    "/collection",
    summary="Delete a collection (its enrollments stay)",
    responses=responses(str, 404, example=examples.COLLECTION_DELETED, message=None),
    openapi_extra=json_body(CollectionRef, example=examples.COLLECTION_REF),
)
async def delete_collection(
    request: Request, tenant: TenantDep, services: ServicesDep
) -> JSONResponse:
    payload, _ = await validated(request, CollectionRef)
    await run_in_threadpool(services.collections.delete, tenant, payload.collection_id)
    return ok(f"Entity {payload.collection_id} has been deleted", None)


@router.get(
    "/collection",
    summary="Your collections, their enrollments (a page of ids per collection, and the count) "
    "and training state",
    responses=responses(
        list[CollectionOut],
        example=examples.COLLECTIONS,
        message="collections listed successfully",
    ),
)
async def list_collections(
    tenant: TenantDep,
    services: ServicesDep,
    enrollments_limit: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_ENROLLMENTS_LIMIT,
            description="member ids listed per collection (0: only enrollment_count); a "
            "collection with no more members than this lists them all",
            examples=[DEFAULT_ENROLLMENTS_LIMIT],
        ),
    ] = DEFAULT_ENROLLMENTS_LIMIT,
    enrollments_offset: Annotated[
        int,
        Query(
            ge=0,
            description="member ids to skip per collection (oldest membership first): the next "
            "page starts at enrollments_offset + enrollments_limit while that is below "
            "enrollment_count",
            examples=[0],
        ),
    ] = 0,
    collection_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="only this collection (404 if it is not yours): pages through one "
            "large collection's members without reading the others'",
        ),
    ] = None,
) -> JSONResponse:
    views = await run_in_threadpool(
        services.collections.list,
        tenant,
        enrollments_limit=enrollments_limit,
        enrollments_offset=enrollments_offset,
        only=collection_id,
    )
    return ok([presenters.collection(v) for v in views], "collections listed successfully")


@router.post(
    "/train",
    summary="Train a collection in the background; watch status in GET /v1/collection",
    responses=responses(
        CollectionIdOut,
        404,
        503,
        example=examples.COLLECTION_ID,
        message="retraining the classifier",
    ),
    openapi_extra=json_body(CollectionRef, example=examples.COLLECTION_REF),
)
async def train(request: Request, tenant: TenantDep, services: ServicesDep) -> JSONResponse:
    payload, _ = await validated(request, CollectionRef)
    collection_id = await run_in_threadpool(services.trainer.request, tenant, payload.collection_id)
    return ok({"collection_id": collection_id}, "retraining the classifier")

"""POST /v1/match (1:1 against an enrollment) and POST /v1/identify (1:N in a collection)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from facegate.api import presenters
from facegate.api.deps import ServicesDep, TenantDep
from facegate.api.envelope import ok
from facegate.api.payloads import decode_base64_field, validated
from facegate.api.routes import examples
from facegate.api.routes.docs import json_body, responses
from facegate.api.schemas import IdentifyOut, IdentifyRequest, MatchRequest
from facegate.errors import BadRequest

router = APIRouter(prefix="/v1", tags=["recognition"])


@router.post(
    "/match",
    summary="Score a face against every stored embedding of an enrollment",
    responses=responses(
        dict[str, float | bool],
        404,
        422,
        503,
        example=examples.MATCHES,
        message="face processed successfully",
    ),
    openapi_extra=json_body(MatchRequest, example=examples.MATCH, files=("img",)),
)
async def match(request: Request, tenant: TenantDep, services: ServicesDep) -> JSONResponse:
    payload, _ = await validated(request, MatchRequest)
    image = await decode_base64_field(
        payload.img, "img", max_bytes=services.settings.max_image_bytes
    )
    results = await services.inference.run(
        services.recognition.match, tenant, payload.id, image, payload.threshold
    )
    return ok(presenters.matches(results), "face processed successfully")


@router.post(
    "/identify",
    summary="Who is this? The best enrollment of a trained collection, or unknown",
    responses=responses(
        IdentifyOut,
        404,
        409,
        422,
        503,
        example=examples.IDENTIFIED,
        message="identify processed successfully",
    ),
    openapi_extra=json_body(IdentifyRequest, example=examples.IDENTIFY, files=("img",)),
)
async def identify(request: Request, tenant: TenantDep, services: ServicesDep) -> JSONResponse:
    payload, _ = await validated(request, IdentifyRequest)
    if payload.top_k is not None and payload.top_k > services.settings.max_top_k:
        raise BadRequest(f"top_k: at most {services.settings.max_top_k}")
    image = await decode_base64_field(
        payload.img, "img", max_bytes=services.settings.max_image_bytes
    )
    results = await services.inference.run(
        services.recognition.identify,
        tenant,
        payload.collection_id,
        image,
        all_faces=payload.all_faces,
        top_k=payload.top_k,
    )
    data = presenters.identification(
        results, all_faces=payload.all_faces, top_k=payload.top_k is not None
    )
    return ok(data, "identify processed successfully")

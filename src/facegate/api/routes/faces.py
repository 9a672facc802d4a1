"""POST /v1/spdetect and POST /v1/facedetect: raw image bytes or JSON ``{"img": base64}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from facegate.api import presenters
from facegate.api.deps import ServicesDep, TenantDep
from facegate.api.envelope import ok
from facegate.api.payloads import image_bytes
from facegate.api.routes import examples
from facegate.api.routes.docs import image_body, responses
from facegate.api.schemas import FacesOut, SpoofOut
from facegate.errors import BadRequest

router = APIRouter(prefix="/v1", tags=["faces"])


@router.post(
    "/spdetect",
    summary="Spoof detection: is this a real face or a presentation attack?",
    responses=responses(
        SpoofOut, 422, 503, example=examples.SPOOF, message="data processed successfully"
    ),
    openapi_extra=image_body(),
)
async def spdetect(request: Request, tenant: TenantDep, services: ServicesDep) -> JSONResponse:
    image = await image_bytes(request, max_bytes=services.settings.max_image_bytes)
    result = await services.inference.run(services.spoof.check, tenant, image)
    return ok(presenters.spoof(result), "data processed successfully")


@router.post(
    "/facedetect",
    summary="Every face in the image: box, confidence, 5 points, quality; 68 points on request",
    responses=responses(
        FacesOut, 503, example=examples.FACES, message="face processed successfully"
    ),
    openapi_extra=image_body(),
)
async def facedetect(
    request: Request,
    _tenant: TenantDep,
    services: ServicesDep,
    rawlandmarks: Annotated[str | None, Query(description="true: add 68 landmarks")] = None,
    rawlandmark: Annotated[str | None, Query(description="the seed's spelling")] = None,
) -> JSONResponse:
    landmarks = _query_flag("rawlandmarks", rawlandmarks) or _query_flag("rawlandmark", rawlandmark)
    image = await image_bytes(request, max_bytes=services.settings.max_image_bytes)
    detected = await services.inference.run(services.detection.detect, image, landmarks68=landmarks)
    return ok(presenters.faces(detected, landmarks=landmarks), "face processed successfully")


def _query_flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", ""):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name}: must be true or false, not {value[:40]!r}")

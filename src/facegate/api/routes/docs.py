"""OpenAPI helpers: the routes read bodies themselves, so their schemas are declared here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from facegate.api.schemas import Envelope, ErrorEnvelope

_ERRORS = {
    400: "bad request: what is wrong, precisely",
    401: "missing, wrong or revoked x-api-key",
    404: "no such id for this key",
    406: "the Accept header excludes application/json",
    413: "image or body over the size limit",
    415: "unsupported Content-Type",
    422: "no usable face where one is required",
    429: "rate limit exceeded (see Retry-After)",
    503: "overloaded, shutting down or a model not available",
}


def responses(data: Any, *statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {200: {"model": Envelope[data]}}  # type: ignore[valid-type]
    for status in (400, 401, 406, 413, 415, 429, *statuses):
        out[status] = {"model": ErrorEnvelope, "description": _ERRORS.get(status, "error")}
    return out


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def image_body() -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": binary,
                "image/png": binary,
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["img"],
                        "properties": {"img": {"type": "string", "description": "base64 image"}},
                    }
                },
            },
        }
    }

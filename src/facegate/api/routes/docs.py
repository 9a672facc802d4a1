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


_BINARY = {"type": "string", "format": "binary"}


def json_body(model: type[BaseModel], *, files: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON body of ``model``; with ``files``, also a multipart form where those fields are
    uploaded files and the others text fields."""
    schema = model.model_json_schema()
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if files:
        form = {
            "type": "object",
            "required": [f for f in schema.get("required", []) if f not in files],
            "properties": {
                **{
                    name: {"type": "string", "description": prop.get("description", name)}
                    for name, prop in schema.get("properties", {}).items()
                },
                **{name: {**_BINARY, "description": "an image file"} for name in files},
            },
        }
        content["multipart/form-data"] = {"schema": form}
    return {"requestBody": {"required": True, "content": content}}


def image_body() -> dict[str, Any]:
    binary = {"schema": _BINARY}
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
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["img"],
                        "properties": {"img": {**_BINARY, "description": "an image file"}},
                    }
                },
            },
        }
    }

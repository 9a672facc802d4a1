"""OpenAPI helpers: the routes read bodies themselves, so their schemas are declared here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from facegate.api.envelope import ERROR_CODE_HEADER
from facegate.api.routes import examples
from facegate.api.schemas import Envelope, ErrorEnvelope

_ERRORS = {
    409: "the collection has never been trained",
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


def responses(
    data: Any, *statuses: int, example: Any, message: str | None
) -> dict[int | str, dict[str, Any]]:
    """The answers of an operation: the envelope of ``data`` (with an example answer) and the
    refusals it can give (each with a real message and its x-facegate-error code)."""
    success = {"data": example, "message": message, "success": True}
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "model": Envelope[data],  # type: ignore[valid-type]
            "content": {"application/json": {"example": success}},
        }
    }
    for status in (400, 401, 406, 413, 415, 429, *statuses):
        code, error_message = examples.ERRORS[status]
        out[status] = {
            "model": ErrorEnvelope,
            "description": _ERRORS.get(status, "error"),
            "headers": {
                ERROR_CODE_HEADER: {
                    "description": "the stable error code, e.g. " + code,
                    "schema": {"type": "string"},
                }
            },
            "content": {
                "application/json": {
                    "example": {"data": None, "message": error_message, "success": False}
                }
            },
        }
    return out


_BINARY = {"type": "string", "format": "binary"}


def json_body(
    model: type[BaseModel], *, example: dict[str, Any], files: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A JSON body of ``model``; with ``files``, also a multipart form where those fields are
    uploaded files and the others text fields."""
    schema = model.model_json_schema()
    content: dict[str, Any] = {"application/json": {"schema": schema, "example": example}}
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
                    },
                    "example": examples.IMAGE,
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


def tidy_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Two corrections to the schema FastAPI renders.

    - FastAPI documents a 422 "Validation Error" for every operation with parameters, but a
      parameter that fails validation is answered 400 in the envelope here: that 422 goes.
    - FastAPI drops every null from the schema, examples included, so an error example would
      lose its ``"data": null``: the envelope's null fields are put back.
    """
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            answers = operation.get("responses", {})
            unprocessable = answers.get("422", {}).get("content", {}).get("application/json", {})
            if unprocessable.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del answers["422"]
            for answer in answers.values():
                for media in answer.get("content", {}).values():
                    example = media.get("example")
                    if isinstance(example, dict) and "success" in example:
                        example.setdefault("data", None)
                        example.setdefault("message", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema

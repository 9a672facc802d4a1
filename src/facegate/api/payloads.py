"""Reading request bodies: JSON objects for most endpoints, raw image bytes or JSON for two,
and ``multipart/form-data`` (``curl -F img=@photo.jpg``) wherever JSON is accepted.

Bodies are parsed here rather than by FastAPI so that every refusal carries a precise message
and the right status (415 wrong type, 400 unreadable, 413 too large while streaming).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from facegate.api import forms
from facegate.api.errors import validation_message
from facegate.api.jsonlimits import loads_limited
from facegate.errors import BadRequest, EmptyImage, UnsupportedMediaType
from facegate.service.images import decode_base64

RAW_IMAGE_TYPES = ("image/jpeg", "image/jpg", "image/png", "image/webp", "application/octet-stream")
_IMAGE_FIELD = re.compile(r"img([0-9]+)")
# img0 … img999999: enough for any numbering scheme; longer numbers are refused, not converted
# (Python refuses to convert integers of over 4,300 digits).
_MAX_IMAGE_NUMBER_DIGITS = 6

ModelT = TypeVar("ModelT", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")
# Parsing or decoding this much runs on the event loop (well under a millisecond): a trip to
# the thread pool costs the request two turns of the loop, which under overload take tens of
# milliseconds each (BENCHMARKS.md, Overload). Larger inputs go to the pool.
INLINE_BYTES = 256 * 1024


def media_type(request: Request) -> str | None:
    header = request.headers.get("content-type")
    if header is None or not header.strip():
        return None
    return header.split(";", 1)[0].strip().lower()


def _is_json(kind: str | None) -> bool:
    return kind is not None and (kind == "application/json" or kind.endswith("+json"))


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object. A missing Content-Type is accepted: the seed's Python examples
    post ``json.dumps(...)`` strings, for which ``requests`` sends none."""
    kind = media_type(request)
    if kind == forms.MULTIPART:
        return forms.as_json_body(await forms.fields(request))
    if kind is not None and not _is_json(kind):
        raise UnsupportedMediaType(
            f"Content-Type {kind} is not accepted here; send a JSON body with "
            "Content-Type: application/json (or multipart/form-data)"
        )
    return await _parse_json(await request.body())


async def validated(request: Request, model: type[ModelT]) -> tuple[ModelT, dict[str, Any]]:
    body = await json_object(request)
    try:
        return model.model_validate(body), body
    except ValidationError as exc:
        raise BadRequest(validation_message(exc)) from exc


async def image_bytes(request: Request, *, max_bytes: int) -> bytes:
    """Raw ``image/jpeg`` / ``image/png`` bytes, JSON ``{"img": base64}``, or a multipart
    ``img`` file (or base64 text) field."""
    kind = media_type(request)
    if kind == forms.MULTIPART:
        return await forms.image(await forms.fields(request), max_bytes=max_bytes)
    body = await request.body()
    if kind in RAW_IMAGE_TYPES or (kind is None and body.lstrip()[:1] != b"{"):
        if not body:
            raise EmptyImage('the request body is empty; send the image bytes or JSON {"img": ...}')
        return body
    if not _is_json(kind) and kind is not None:
        raise UnsupportedMediaType(
            f"Content-Type {kind} is not accepted here; send image/jpeg or image/png bytes, "
            'JSON {"img": base64} with Content-Type: application/json, '
            "or multipart/form-data with an img file"
        )
    payload = await _parse_json(body)
    if "img" not in payload:
        raise BadRequest("img: is required (a base64-encoded image)")
    return await decode_base64_field(payload["img"], "img", max_bytes=max_bytes)


async def decode_base64_field(value: Any, field: str, *, max_bytes: int) -> bytes:
    """:func:`decode_base64`, in the thread pool only for a large value."""
    size = len(value) if isinstance(value, str | bytes) else 0
    return await off_loop_if_large(size, decode_base64, value, field, max_bytes=max_bytes)


def image_fields(body: dict[str, Any], *, max_bytes: int) -> dict[str, bytes]:
    """``img0`` … ``imgN`` in numeric order, each decoded from base64 (errors name the field)."""
    return {key: decode_base64(body[key], key, max_bytes=max_bytes) for key in _image_keys(body)}


def count_image_fields(body: dict[str, Any]) -> int:
    return len(_image_keys(body))


def _image_keys(body: dict[str, Any]) -> list[str]:
    numbered = []
    for key in body:
        match = _IMAGE_FIELD.fullmatch(key)
        if match is None:
            continue
        digits = match.group(1)
        if len(digits) > _MAX_IMAGE_NUMBER_DIGITS:
            raise BadRequest(
                f"{key[:12]}…: image fields are named img0, img1, … with a number of at most "
                f"{_MAX_IMAGE_NUMBER_DIGITS} digits"
            )
        numbered.append((int(digits), key))
    return [key for _, key in sorted(numbered)]


async def off_loop_if_large(size: int, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn`` in the thread pool if its input is over :data:`INLINE_BYTES`, else right here."""
    if size <= INLINE_BYTES:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


async def _parse_json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON object")
    # Large bodies (ten images) take a while to parse: keep the event loop free meanwhile.
    payload = await off_loop_if_large(len(body), loads_limited, body)
    if not isinstance(payload, dict):
        raise BadRequest('the body must be a JSON object, e.g. {"img": "..."}')
    return payload

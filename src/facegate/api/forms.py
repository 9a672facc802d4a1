"""``multipart/form-data`` bodies (``curl -F img=@photo.jpg``), read for :mod:`payloads`.

Images come as file fields (``img``; ``img0`` … ``img9`` for enroll), every other field as text.
A form is turned into the JSON body it stands for, so both go through the same validation.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from facegate.errors import BadRequest, EmptyImage, ImageTooLarge
from facegate.service.images import decode_base64

MULTIPART = "multipart/form-data"
_IMAGE_FIELD = re.compile(r"img[0-9]+")
# CompreFace's and deepface's users post ``-F file=@photo.jpg``: taken as ``img`` when it is absent.
_FILE_ALIAS = "file"
# Enough parts for eleven images and the other fields, so that the endpoints themselves can say
# what is wrong (e.g. "11 images sent; at most 10"); the body's size is bounded by RequestGuard.
_MAX_FORM_PARTS = 64
_MAX_FORM_PART_BYTES = 64 * 1024 * 1024


async def fields(request: Request) -> dict[str, str | bytes]:
    """A multipart body's parts by name: text fields as ``str``, uploaded files as ``bytes``."""
    # Starlette refuses a malformed body (no boundary, too many parts) with a 400 HTTPException,
    # which the error handler renders with its message.
    form = await request.form(
        max_files=_MAX_FORM_PARTS, max_fields=_MAX_FORM_PARTS, max_part_size=_MAX_FORM_PART_BYTES
    )
    parts: dict[str, str | bytes] = {}
    try:
        for name, value in form.multi_items():
            if name in parts:
                raise BadRequest(f"{name}: sent more than once; send each field once")
            parts[name] = await value.read() if isinstance(value, UploadFile) else value
    finally:
        await form.close()
    if _FILE_ALIAS in parts and "img" not in parts:
        parts["img"] = parts.pop(_FILE_ALIAS)
    return parts


def as_json_body(fields: dict[str, str | bytes]) -> dict[str, Any]:
    """Form fields as the JSON body they stand for: files become base64 strings, so the same
    validation, limits and messages apply to both (the cost is small next to inference)."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, bytes):
            if name != "img" and _IMAGE_FIELD.fullmatch(name) is None:
                raise BadRequest(
                    f"{name}: a file is accepted only as img (img0 … img9 for enroll); "
                    "send other fields as text"
                )
            body[name] = base64.b64encode(value).decode("ascii")
        else:
            body[name] = value
    return body


async def image(fields: dict[str, str | bytes], *, max_bytes: int) -> bytes:
    """The one image of /v1/facedetect and /v1/spdetect: an ``img`` file, or base64 text."""
    value = fields.get("img")
    if value is None:
        raise BadRequest("img: is required (a file field, e.g. curl -F img=@photo.jpg)")
    if isinstance(value, str):
        return await run_in_threadpool(decode_base64, value, "img", max_bytes=max_bytes)
    if not value:
        raise EmptyImage("img: the image is empty")
    if len(value) > max_bytes:
        raise ImageTooLarge(f"img: the image is {len(value)} bytes; the limit is {max_bytes} bytes")
    return value

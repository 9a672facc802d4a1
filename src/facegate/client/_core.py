"""The I/O-free half of both clients: each endpoint as a request and a parser, the envelope,
errors and the retry policy. :class:`Client` and :class:`AsyncClient` only add sending."""

from __future__ import annotations

import base64
import email.utils
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from facegate.client import _types as types
from facegate.client._errors import (
    APIError,
    InvalidInput,
    ModelMissing,
    ProtocolError,
    RateLimited,
    Unavailable,
    error_class,
)
from facegate.client._images import ImageInput, content_type, image_bytes

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8085"
ERROR_CODE_HEADER = "x-facegate-error"
MAX_IMAGES_PER_REQUEST = 10


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read its answer's ``data``."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": self.headers, "params": self.params}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.content is not None:
            kwargs["content"] = self.content
        return kwargs


def base_url(url: str) -> str:
    """The server's root: ``http://host:8085``, also when given with the ``/v1`` suffix."""
    root = url.rstrip("/")
    return root.removesuffix("/v1")


def b64(image: ImageInput) -> str:
    return base64.b64encode(image_bytes(image)).decode("ascii")


def _raw_image(image: ImageInput) -> tuple[bytes, dict[str, str]]:
    data = image_bytes(image)
    return data, {"content-type": content_type(data)}


def _images(images: ImageInput | Sequence[ImageInput]) -> dict[str, str]:
    # A single image is common enough to accept as it is; a str or bytes is one image, never a
    # sequence of them.
    many = (
        list(images)
        if isinstance(images, Sequence)
        and not isinstance(images, str | bytes | bytearray | memoryview)
        else [images]
    )
    if not 1 <= len(many) <= MAX_IMAGES_PER_REQUEST:
        raise InvalidInput(
            f"{len(many)} images given; send 1 to {MAX_IMAGES_PER_REQUEST} per request"
        )
    return {f"img{i}": b64(image) for i, image in enumerate(many)}


def _enrollment_id(data: Any) -> str:
    return str(data["enrollment_id"])


def _collection_id(data: Any) -> str:
    return str(data["collection_id"])


def _nothing(_data: Any) -> None:
    return None


def _collections(data: Any) -> list[types.Collection]:
    return [types.collection(c) for c in data]


# The endpoints. ----------------------------------------------------------------------------


def detect(image: ImageInput, *, landmarks: bool) -> Call[list[types.Face]]:
    content, headers = _raw_image(image)
    params = {"rawlandmarks": "true"} if landmarks else {}
    return Call(
        "POST", "/v1/facedetect", types.faces, content=content, headers=headers, params=params
    )


def spoof(image: ImageInput) -> Call[types.SpoofCheck]:
    content, headers = _raw_image(image)
    return Call("POST", "/v1/spdetect", types.spoof_check, content=content, headers=headers)


def enroll(
    images: ImageInput | Sequence[ImageInput], *, name: str | None, collection_id: str | None
) -> Call[str]:
    body: dict[str, Any] = _images(images)
    if name is not None:
        body["name"] = name
    if collection_id is not None:
        body["collection_id"] = collection_id
    return Call("POST", "/v1/enroll", _enrollment_id, json=body)


def add_images(enrollment_id: str, images: ImageInput | Sequence[ImageInput]) -> Call[str]:
    body = {"enrollment_id": enrollment_id, **_images(images)}
    return Call("PUT", "/v1/enroll", _enrollment_id, json=body)


def delete_enrollment(enrollment_id: str) -> Call[None]:
    return Call("DELETE", "/v1/enroll", _nothing, json={"enrollment_id": enrollment_id})


def list_enrollments(*, limit: int, offset: int) -> Call[types.EnrollmentPage]:
    params = {"limit": str(limit), "offset": str(offset)}
    return Call("GET", "/v1/enroll", types.enrollment_page, params=params)


def get_enrollment(enrollment_id: str) -> Call[types.Enrollment]:
    # Quoted: an id is opaque, and one with a slash must not reach another path.
    path = "/v1/enroll/" + urllib.parse.quote(enrollment_id, safe="")
    return Call("GET", path, types.enrollment)


def create_collection(name: str, *, unknowns: bool) -> Call[str]:
    return Call("POST", "/v1/collection", _collection_id, json={"name": name, "unknowns": unknowns})


def add_to_collection(collection_id: str, enrollment_id: str) -> Call[str]:
    body = {"collection_id": collection_id, "enrollment_id": enrollment_id}
    return Call("PUT", "/v1/collection", _collection_id, json=body)


def delete_collection(collection_id: str) -> Call[None]:
    return Call("DELETE", "/v1/collection", _nothing, json={"collection_id": collection_id})


def list_collections(
    *,
    enrollments_limit: int | None = None,
    enrollments_offset: int = 0,
    collection_id: str | None = None,
) -> Call[list[types.Collection]]:
    # Only what was asked is sent: by default the request is the seed's plain GET.
    params: dict[str, str] = {}
    if collection_id is not None:
        params["collection_id"] = collection_id
    if enrollments_limit is not None:
        params["enrollments_limit"] = str(enrollments_limit)
    if enrollments_offset:
        params["enrollments_offset"] = str(enrollments_offset)
    return Call("GET", "/v1/collection", _collections, params=params)


def train(collection_id: str) -> Call[str]:
    return Call("POST", "/v1/train", _collection_id, json={"collection_id": collection_id})


def match(image: ImageInput, enrollment_id: str, *, threshold: float | None) -> Call[types.Match]:
    body: dict[str, Any] = {"img": b64(image), "id": enrollment_id}
    if threshold is not None:
        body["threshold"] = threshold
    return Call("POST", "/v1/match", types.match, json=body)


def identify(
    image: ImageInput, collection_id: str, *, top_k: int | None, all_faces: bool
) -> Call[types.Identification]:
    body: dict[str, Any] = {"img": b64(image), "collection_id": collection_id}
    if top_k is not None:
        body["top_k"] = top_k
    if all_faces:
        body["all_faces"] = True
    return Call("POST", "/v1/identify", types.identification, json=body)


def ready() -> Call[bool]:
    return Call("GET", "/readyz", lambda data: data.get("status") == "ready")


def find_collection(collections: list[types.Collection], collection_id: str) -> types.Collection:
    for entry in collections:
        if entry.id == collection_id:
            return entry
    raise error_class(404, "not_found")(
        f"no collection with id {collection_id!r} for this API key", status_code=404
    )


# Answers. ------------------------------------------------------------------------------------


def outcome(response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """The parsed ``data`` of a successful answer; the matching :class:`APIError` otherwise."""
    try:
        body = response.json()
        envelope_ok = isinstance(body, dict) and {"data", "message", "success"} <= body.keys()
    except ValueError:
        body, envelope_ok = None, False
    if response.is_success and envelope_ok and body["success"] is True:
        try:
            return parse(body["data"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(
                f"unexpected data in the answer to {_where(response)}: {exc!r}"
            ) from exc
    if response.is_success:
        raise ProtocolError(f"the answer to {_where(response)} is not facegate's envelope")
    raise refusal(response, body["message"] if envelope_ok and body["message"] else None)


def refusal(response: httpx.Response, message: str | None) -> APIError:
    status = response.status_code
    code = response.headers.get(ERROR_CODE_HEADER)
    cls = error_class(status, code)
    if message is None:
        # Not facegate's envelope (a proxy's page, say): say so, with the start of it.
        snippet = response.text[:200].strip()
        message = f"HTTP {status} from {_where(response)}" + (f": {snippet}" if snippet else "")
    if issubclass(cls, RateLimited):
        return cls(
            message,
            status_code=status,
            code=code,
            response=response,
            retry_after=retry_after(response.headers.get("retry-after")),
        )
    return cls(message, status_code=status, code=code, response=response)


def _where(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path}"


def retry_after(header: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date (RFC 9110)."""
    if header is None or not header.strip():
        return None
    value = header.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 429 and 503 answers: at most ``max_retries`` of them, sleeping at most
    ``max_wait`` seconds in all; ``Retry-After`` is honoured, else the wait doubles from
    ``backoff``. A wait that would break the budget is not started: the error is raised."""

    max_retries: int = 3
    max_wait: float = 30.0
    backoff: float = 0.5

    def delay(self, error: APIError, attempt: int, waited: float) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``; None: raise ``error`` now."""
        if attempt >= self.max_retries or not isinstance(error, RateLimited | Unavailable):
            return None
        if isinstance(error, ModelMissing):
            return None  # a missing model does not come back by waiting
        hinted = error.retry_after if isinstance(error, RateLimited) else None
        if hinted is None and error.response is not None:
            hinted = retry_after(error.response.headers.get("retry-after"))
        delay = hinted if hinted is not None else self.backoff * 2**attempt
        return delay if waited + delay <= self.max_wait else None

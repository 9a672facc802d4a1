"""The client's exceptions: one base, one class per error code the server sends.

    FacegateClientError
    ├── InvalidInput (also a ValueError): an image the client cannot send
    ├── TransportError: no answer (connection refused, timeout, …); wraps httpx's error
    ├── ProtocolError: an answer that is not facegate's envelope
    └── APIError: the server refused; ``status_code``, ``code``, ``message``, ``response``
        ├── InternalServerError (500 internal_error)
        ├── BadRequest (400 bad_request)
        │   ├── InvalidImage (invalid_image)
        │   │   ├── EmptyImage (empty_image)
        │   │   └── TruncatedImage (truncated_image)
        │   └── TooManyImages (too_many_images)
        ├── Unauthorized (401), Forbidden (403), NotFound (404)
        ├── MethodNotAllowed (405), NotAcceptable (406), RequestTimeout (408)
        ├── Conflict (409 conflict)
        │   ├── NotTrained (not_trained)
        │   └── RecipeMismatch (recipe_mismatch)
        ├── PayloadTooLarge (413 payload_too_large)
        │   ├── ImageTooLarge (image_too_large)
        │   ├── ImageTooManyPixels (image_too_many_pixels)
        │   └── ImageTooExpansive (image_too_expansive)
        ├── UnsupportedMediaType (415)
        ├── NoUsableFace (422 no_usable_face)
        │   ├── NoFaceFound (no_face_found)
        │   └── PoorQualityFace (poor_quality_face)
        ├── RateLimited (429 rate_limited; ``retry_after`` seconds)
        └── Unavailable (503 unavailable)
            └── ModelMissing (model_missing)
                └── ModelCorrupt (model_corrupt)

The class is chosen from the ``x-facegate-error`` header when the server sends it, else from the
HTTP status alone (a seed-compatible server, or a proxy in between), so code written against the
status-level classes (``NoUsableFace``, ``BadRequest``) works with either.
"""

from __future__ import annotations

from typing import ClassVar

import httpx


class FacegateClientError(Exception):
    """Base class of every error :mod:`facegate.client` raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(FacegateClientError, ValueError):
    """An input the client cannot turn into an image (wrong type, dtype or shape)."""


class TransportError(FacegateClientError):
    """The request got no answer: the server is unreachable or too slow (see ``__cause__``)."""


class ProtocolError(FacegateClientError):
    """The server answered, but not with the ``{"data", "message", "success"}`` envelope."""


class APIError(FacegateClientError):
    """The server refused the request. ``code`` is the server's stable error code."""

    CODE: ClassVar[str] = "error"
    STATUS: ClassVar[int] = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code or self.CODE
        self.response = response

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status_code}, {self.code})"


class InternalServerError(APIError):
    CODE, STATUS = "internal_error", 500


class BadRequest(APIError):
    CODE, STATUS = "bad_request", 400


class InvalidImage(BadRequest):
    CODE = "invalid_image"


class EmptyImage(InvalidImage):
    CODE = "empty_image"


class TruncatedImage(InvalidImage):
    CODE = "truncated_image"


class TooManyImages(BadRequest):
    CODE = "too_many_images"


class Unauthorized(APIError):
    CODE, STATUS = "unauthorized", 401


class Forbidden(APIError):
    CODE, STATUS = "forbidden", 403


class NotFound(APIError):
    CODE, STATUS = "not_found", 404


class MethodNotAllowed(APIError):
    CODE, STATUS = "method_not_allowed", 405


class NotAcceptable(APIError):
    CODE, STATUS = "not_acceptable", 406


class RequestTimeout(APIError):
    """The request's headers or body did not arrive in time (the server closed the connection)."""

    CODE, STATUS = "request_timeout", 408


class Conflict(APIError):
    CODE, STATUS = "conflict", 409


class NotTrained(Conflict):
    CODE = "not_trained"


class RecipeMismatch(Conflict):
    """Stored descriptors were made by another recognition model than the server's."""

    CODE = "recipe_mismatch"


class PayloadTooLarge(APIError):
    CODE, STATUS = "payload_too_large", 413


class ImageTooLarge(PayloadTooLarge):
    CODE = "image_too_large"


class ImageTooManyPixels(PayloadTooLarge):
    CODE = "image_too_many_pixels"


class ImageTooExpansive(PayloadTooLarge):
    """A small file of a huge canvas: send a JPEG or a smaller image."""

    CODE = "image_too_expansive"


class UnsupportedMediaType(APIError):
    CODE, STATUS = "unsupported_media_type", 415


class NoUsableFace(APIError):
    CODE, STATUS = "no_usable_face", 422


class NoFaceFound(NoUsableFace):
    CODE = "no_face_found"


class PoorQualityFace(NoUsableFace):
    CODE = "poor_quality_face"


class RateLimited(APIError):
    """429. ``retry_after`` is the server's ``Retry-After`` in seconds (None if it sent none)."""

    CODE, STATUS = "rate_limited", 429

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        response: httpx.Response | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, response=response)
        self.retry_after = retry_after


class Unavailable(APIError):
    CODE, STATUS = "unavailable", 503


class ModelMissing(Unavailable):
    """A model is not installed on the server: waiting does not help, so it is not retried."""

    CODE = "model_missing"


class ModelCorrupt(ModelMissing):
    CODE = "model_corrupt"


def _subclasses(cls: type[APIError]) -> list[type[APIError]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


BY_CODE: dict[str, type[APIError]] = {cls.CODE: cls for cls in _subclasses(APIError)}
# The class of the first (top-level) code of each status: what a status alone can say.
BY_STATUS: dict[int, type[APIError]] = {
    cls.STATUS: cls for cls in APIError.__subclasses__() if cls.STATUS
}


def error_class(status_code: int, code: str | None) -> type[APIError]:
    """The most specific class for a refusal: by code if known, else by status."""
    if code is not None and code in BY_CODE:
        return BY_CODE[code]
    if status_code in BY_STATUS:
        return BY_STATUS[status_code]
    return InternalServerError if status_code >= 500 else APIError

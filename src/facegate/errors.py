"""The one exception hierarchy of facegate.

Every error a client can cause is a :class:`FacegateError` subclass with a stable ``code`` (for
programs) and an HTTP ``status`` (for the API's single handler). The engine, the service layer and
the store raise these; the API layer only translates them into the wire envelope.

    FacegateError (500 internal_error)
    ├── BadRequest (400 bad_request)
    │   ├── InvalidImage (400 invalid_image)
    │   │   ├── EmptyImage (400 empty_image)
    │   │   └── TruncatedImage (400 truncated_image)
    │   └── TooManyImages (400 too_many_images)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    ├── NotFound (404 not_found)
    ├── MethodNotAllowed (405 method_not_allowed)
    ├── NotAcceptable (406 not_acceptable)
    ├── RequestTimeout (408 request_timeout)
    ├── Conflict (409 conflict)
    │   ├── NotTrained (409 not_trained)
    │   └── RecipeMismatch (409 recipe_mismatch)
    ├── PayloadTooLarge (413 payload_too_large)
    │   ├── ImageTooLarge (413 image_too_large)
    │   ├── ImageTooManyPixels (413 image_too_many_pixels)
    │   └── ImageTooExpansive (413 image_too_expansive)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── NoUsableFace (422 no_usable_face)
    │   ├── NoFaceFound (422 no_face_found)
    │   └── PoorQualityFace (422 poor_quality_face)
    ├── RateLimited (429 rate_limited)
    └── Unavailable (503 unavailable)
        └── ModelMissing (503 model_missing)
            └── ModelCorrupt (503 model_corrupt)
"""

from __future__ import annotations


class FacegateError(Exception):
    """Base class; carries a client-facing message, a stable code and an HTTP status."""

    code = "internal_error"
    status = 500
    # Seconds after which a retry may succeed (sent as Retry-After); None: retrying won't help.
    retry_after_s: int | None = None
    # The request may be only partly read: the connection cannot carry another request.
    closes_connection = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(FacegateError):
    code = "bad_request"
    status = 400


class InvalidImage(BadRequest):
    code = "invalid_image"


class EmptyImage(InvalidImage):
    code = "empty_image"


class TruncatedImage(InvalidImage):
    code = "truncated_image"


class TooManyImages(BadRequest):
    code = "too_many_images"


class Unauthorized(FacegateError):
    code = "unauthorized"
    status = 401


class Forbidden(FacegateError):
    code = "forbidden"
    status = 403


class NotFound(FacegateError):
    code = "not_found"
    status = 404


class MethodNotAllowed(FacegateError):
    code = "method_not_allowed"
    status = 405


class NotAcceptable(FacegateError):
    code = "not_acceptable"
    status = 406


class RequestTimeout(FacegateError):
    code = "request_timeout"
    status = 408
    closes_connection = True


class Conflict(FacegateError):
    code = "conflict"
    status = 409


class NotTrained(Conflict):
    code = "not_trained"


class RecipeMismatch(Conflict):
    """Stored descriptors were made by another recogniser or alignment than the running one."""

    code = "recipe_mismatch"

    @classmethod
    def holding(
        cls, subject: str, held: dict[str, int], running: str, remedy: str
    ) -> RecipeMismatch:
        """``subject`` (e.g. "enrollment 'x'") holds ``held`` (recipe → embeddings), none of
        ``running``; the message says which, and ``remedy`` what to do."""
        holdings = ", ".join(f"{count} by {recipe}" for recipe, count in sorted(held.items()))
        return cls(
            f"{subject} holds embeddings of another recipe ({holdings}); this server computes "
            f"{running}. {remedy}, or serve with the recogniser that made them "
            "(FACEGATE_RECOGNIZER)"
        )


class PayloadTooLarge(FacegateError):
    """Over a configured limit; the message names the setting that raises it (once)."""

    code = "payload_too_large"
    status = 413
    setting = "FACEGATE_MAX_REQUEST_BYTES"

    def __init__(self, message: str, setting: str | None = None) -> None:
        name = setting or self.setting
        if name not in message:
            message = f"{message}; the operator can raise it with {name}"
        super().__init__(message)


class ImageTooLarge(PayloadTooLarge):
    code = "image_too_large"
    setting = "FACEGATE_MAX_IMAGE_BYTES"


class ImageTooManyPixels(PayloadTooLarge):
    code = "image_too_many_pixels"
    setting = "FACEGATE_MAX_IMAGE_PIXELS"


class ImageTooExpansive(PayloadTooLarge):
    """Decodes to far more bytes than it was sent in (a small file of a huge, flat canvas)."""

    code = "image_too_expansive"
    setting = "FACEGATE_MAX_IMAGE_EXPANSION"


class UnsupportedMediaType(FacegateError):
    code = "unsupported_media_type"
    status = 415


class NoUsableFace(FacegateError):
    code = "no_usable_face"
    status = 422


class NoFaceFound(NoUsableFace):
    code = "no_face_found"


class PoorQualityFace(NoUsableFace):
    code = "poor_quality_face"


class RateLimited(FacegateError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(FacegateError):
    """Overloaded, shutting down or not ready: always temporary, so always with Retry-After."""

    code = "unavailable"
    status = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelMissing(Unavailable):
    code = "model_missing"

    def __init__(self, message: str, retry_after_s: int = 60) -> None:
        # The operator must install the model: retrying every second would only add load.
        super().__init__(message, retry_after_s)


class ModelCorrupt(ModelMissing):
    """A model file's SHA-256 is not the one the registry names."""

    code = "model_corrupt"

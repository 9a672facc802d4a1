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
    ├── Conflict (409 conflict)
    │   ├── NotTrained (409 not_trained)
    │   └── RecipeMismatch (409 recipe_mismatch)
    ├── PayloadTooLarge (413 payload_too_large)
    │   ├── ImageTooLarge (413 image_too_large)
    │   └── ImageTooManyPixels (413 image_too_many_pixels)
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


class Conflict(FacegateError):
    code = "conflict"
    status = 409


class NotTrained(Conflict):
    code = "not_trained"


class RecipeMismatch(Conflict):
    """Stored descriptors were made by another recogniser or alignment than the running one."""

    code = "recipe_mismatch"


class PayloadTooLarge(FacegateError):
    code = "payload_too_large"
    status = 413


class ImageTooLarge(PayloadTooLarge):
    code = "image_too_large"


class ImageTooManyPixels(PayloadTooLarge):
    code = "image_too_many_pixels"


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
    code = "unavailable"
    status = 503


class ModelMissing(Unavailable):
    code = "model_missing"


class ModelCorrupt(ModelMissing):
    """A model file's SHA-256 is not the one the registry names."""

    code = "model_corrupt"

"""A Python client for facegate (and any Trueface v1 server), on httpx.

    from facegate.client import Client, NoFaceFound

    with Client("http://127.0.0.1:8085", api_key="fg_...") as fg:
        grace = fg.enroll(["grace1.jpg", "grace2.jpg"], name="Grace Hopper")
        home = fg.create_collection("home")
        fg.add_to_collection(home, grace)
        fg.train(home, wait=True)
        who = fg.identify("new-photo.jpg", home)
        print(who.name, who.score)

Images may be paths, bytes, PIL images or numpy uint8 arrays (RGB). Results are frozen
dataclasses; refusals raise one :class:`APIError` subclass per server error code, all under
:class:`FacegateClientError`. See docs/client.md.
"""

from facegate.client._client import AsyncClient, Client
from facegate.client._errors import (
    APIError,
    BadRequest,
    Conflict,
    EmptyImage,
    FacegateClientError,
    Forbidden,
    ImageTooExpansive,
    ImageTooLarge,
    ImageTooManyPixels,
    InternalServerError,
    InvalidImage,
    InvalidInput,
    MethodNotAllowed,
    ModelCorrupt,
    ModelMissing,
    NoFaceFound,
    NotAcceptable,
    NotFound,
    NotTrained,
    NoUsableFace,
    PayloadTooLarge,
    PoorQualityFace,
    ProtocolError,
    RateLimited,
    RecipeMismatch,
    RequestTimeout,
    TooManyImages,
    TransportError,
    TruncatedImage,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from facegate.client._images import ImageInput
from facegate.client._types import (
    Candidate,
    Collection,
    Enrollment,
    EnrollmentPage,
    Face,
    FaceQuality,
    Identification,
    Match,
    RecipeCount,
    SpoofCheck,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Candidate",
    "Client",
    "Collection",
    "Conflict",
    "EmptyImage",
    "Enrollment",
    "EnrollmentPage",
    "Face",
    "FaceQuality",
    "FacegateClientError",
    "Forbidden",
    "Identification",
    "ImageInput",
    "ImageTooExpansive",
    "ImageTooLarge",
    "ImageTooManyPixels",
    "InternalServerError",
    "InvalidImage",
    "InvalidInput",
    "Match",
    "MethodNotAllowed",
    "ModelCorrupt",
    "ModelMissing",
    "NoFaceFound",
    "NoUsableFace",
    "NotAcceptable",
    "NotFound",
    "NotTrained",
    "PayloadTooLarge",
    "PoorQualityFace",
    "ProtocolError",
    "RateLimited",
    "RecipeCount",
    "RecipeMismatch",
    "RequestTimeout",
    "SpoofCheck",
    "TooManyImages",
    "TransportError",
    "TruncatedImage",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]

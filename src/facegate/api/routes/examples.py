"""Examples for the OpenAPI documentation: real requests and answers (from docs/api.md, where
they were pasted from a live server), shortened where a base64 image would be."""

from __future__ import annotations

from typing import Any

IMG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHR...(base64)"
GRACE, EILEEN = "YkCEjiZwm2SfO8mC3sIxZA", "vFG3tirCKsrrV1FNB0nS9Q"
COLLECTION = "QiKEyUeSiRt6gPMRLfKySw"

# Request bodies, by operation. ------------------------------------------------------------
ENROLL = {"name": "Grace Hopper", "collection_id": COLLECTION, "img0": IMG, "img1": IMG}
ENROLL_UPDATE = {"enrollment_id": EILEEN, "img0": IMG}
ENROLLMENT_REF = {"enrollment_id": EILEEN}
COLLECTION_CREATE = {"name": "Home", "unknowns": False}
COLLECTION_UPDATE = {"collection_id": COLLECTION, "enrollment_id": EILEEN}
COLLECTION_REF = {"collection_id": COLLECTION}
MATCH = {"id": GRACE, "img": IMG, "threshold": 0.5}
IDENTIFY = {"collection_id": COLLECTION, "img": IMG, "top_k": 2, "all_faces": False}
IMAGE = {"img": IMG}

# Answers' data, by operation. --------------------------------------------------------------
FACES: dict[str, Any] = {
    "faces": [
        {
            "bounding_box": [166.82, 105.09, 347.92, 336.89, 1.0],
            "points": [
                218.99,
                306.28,
                266.66,
                229.17,
                304.35,
                188.36,
                185.2,
                235.89,
                278.06,
                276.28,
            ],
            "quality": {
                "eye_distance_px": 87.34,
                "sharpness": 1551.86,
                "yaw_deg": 2.4,
                "pitch_deg": 5.05,
                "face_size_px": 181.1,
            },
        }
    ]
}
SPOOF = {"class": "real", "score": 4.23e-05, "key": "rT8HPcRQYDD3EVh2Z-QEtA", "success": True}
ENROLLMENT_ID = {"enrollment_id": GRACE}
COLLECTION_ID = {"collection_id": COLLECTION}
ENROLLMENT_DELETED = f"Enrollment {EILEEN} has been deleted"
COLLECTION_DELETED = f"Entity {COLLECTION} has been deleted"
COLLECTIONS = [
    {
        "id": COLLECTION,
        "name": "Home",
        "enrollments": [GRACE, EILEEN],
        "enrollment_count": 2,
        "unknown": False,
        "created": "2026-11-29T09:48:29.126059",
        "updated": "2026-11-29T09:48:48.110080",
        "owner": "7d6deead66eb4804",
        "status": "ready",
        "trained_at": "2026-11-29T09:48:48.190448",
        "classifier_url": "",
        "label_encoder": "",
    }
]
ENROLLMENT: dict[str, Any] = {
    "id": GRACE,
    "name": "Grace Hopper",
    "images": 3,
    "collections": [COLLECTION],
    "recipes": [{"recipe": "sface@2021dec/arcface112", "tta": "none", "images": 3}],
    "created": "2026-11-29T09:48:31.532260",
    "updated": "2026-11-29T09:48:31.532260",
}
ENROLLMENTS: dict[str, Any] = {
    "enrollments": [
        ENROLLMENT,
        {
            "id": EILEEN,
            "name": "Eileen Collins",
            "images": 2,
            "collections": [COLLECTION],
            "recipes": [{"recipe": "sface@2021dec/arcface112", "tta": "none", "images": 2}],
            "created": "2026-11-29T09:48:36.070548",
            "updated": "2026-11-29T09:48:41.311083",
        },
    ],
    "total": 2,
    "limit": 50,
    "offset": 0,
}
MATCHES = {
    "emb0_score": 0.9999999999997424,
    "emb0_match": True,
    "emb1_score": 0.9999999999999363,
    "emb1_match": True,
}
IDENTIFIED = {
    "name": "Grace Hopper",
    "key": GRACE,
    "score": 0.9999999999999363,
    "unknown_probability": 6.37e-14,
    "candidates": [
        {"key": GRACE, "name": "Grace Hopper", "score": 0.9999999999999363},
        {"key": EILEEN, "name": "Eileen Collins", "score": 3.3e-05},
    ],
}

# Refusals, by status: a real message and the code in x-facegate-error. ----------------------
ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "threshold: Input should be less than or equal to 1"),
    401: ("unauthorized", "missing API key: send it in the x-api-key header"),
    404: ("not_found", "no enrollment with id 'not-mine' for this API key"),
    406: (
        "not_acceptable",
        "this API answers only application/json, which Accept: text/html excludes",
    ),
    409: (
        "not_trained",
        f"collection '{COLLECTION}' has not been trained: call POST /v1/train with its "
        "collection_id, then retry",
    ),
    413: (
        "payload_too_large",
        "the request body is 3000000 bytes; the limit here is 2097152 bytes",
    ),
    415: (
        "unsupported_media_type",
        "Content-Type text/plain is not accepted here; send a JSON body with Content-Type: "
        "application/json (or multipart/form-data)",
    ),
    422: ("no_face_found", "img1: no face found"),
    429: ("rate_limited", "rate limit of 2 requests per minute exceeded; retry in 30 s"),
    503: ("unavailable", "the server is shutting down; retry in a moment"),
}

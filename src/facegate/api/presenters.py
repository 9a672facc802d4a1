"""Service results → the wire's ``data`` objects (field names and layouts of the seed)."""

from __future__ import annotations

from typing import Any

from facegate.engine.types import DetectedFace
from facegate.service.collections import CollectionView
from facegate.service.common import iso
from facegate.service.decision import Candidate
from facegate.service.enrollments import EnrollmentPage, EnrollmentView
from facegate.service.recognition import EmbeddingMatch, Identification
from facegate.service.spoof import SpoofResult


def _px(value: float) -> float:
    return round(float(value), 2)


def bounding_box(face: DetectedFace) -> list[float]:
    return [*(_px(v) for v in face.box), round(float(face.confidence), 4)]


def face(detected: DetectedFace, *, landmarks: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bounding_box": bounding_box(detected),
        "points": [_px(v) for v in detected.points_flat],
    }
    if landmarks and detected.landmarks68 is not None:
        out["landmarks"] = [[_px(x), _px(y)] for x, y in detected.landmarks68]
    if detected.quality is not None:
        q = detected.quality
        out["quality"] = {
            "eye_distance_px": _px(q.eye_distance_px),
            "sharpness": _px(q.sharpness),
            "yaw_deg": _px(q.yaw_deg),
            "pitch_deg": _px(q.pitch_deg),
            "face_size_px": _px(q.face_size_px),
        }
    return out


def faces(detected: list[DetectedFace], *, landmarks: bool) -> dict[str, Any]:
    return {"faces": [face(f, landmarks=landmarks) for f in detected]}


def spoof(result: SpoofResult) -> dict[str, Any]:
    return {"class": result.label, "score": result.score, "key": result.check_id, "success": True}


def collection(view: CollectionView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "enrollments": view.enrollments,
        "enrollment_count": view.enrollment_count,
        "unknown": view.unknowns,
        "created": iso(view.created),
        "updated": iso(view.updated),
        "owner": view.owner,
        "status": view.status.value,
        "trained_at": iso(view.trained_at),
        **_open_set(view),
        # The seed's answers had these storage URLs; nothing is stored behind a URL here.
        "classifier_url": "",
        "label_encoder": "",
    }


def enrollment(view: EnrollmentView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "images": view.images,
        "collections": view.collections,
        "recipes": [{"recipe": r.recipe, "tta": r.tta, "images": r.images} for r in view.recipes],
        "created": iso(view.created),
        "updated": iso(view.updated),
    }


def enrollment_page(page: EnrollmentPage) -> dict[str, Any]:
    return {
        "enrollments": [enrollment(v) for v in page.enrollments],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


def _open_set(view: CollectionView) -> dict[str, Any]:
    """The trained snapshot's size and identify's threshold for it (nulls until trained)."""
    plan = view.plan
    if plan is None:
        return {
            "size": None,
            "identify_threshold": None,
            "target_fpir": None,
            "expected_tpir": None,
            "warning": None,
        }
    return {
        "size": {"enrollments": plan.people, "embeddings": plan.embeddings},
        "identify_threshold": plan.threshold,
        "target_fpir": plan.target_fpir,
        "expected_tpir": plan.expected_tpir,
        "warning": plan.warning,
    }


def matches(results: list[EmbeddingMatch]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, result in enumerate(results):
        out[f"emb{i}_score"] = result.score
        out[f"emb{i}_match"] = result.match
    return out


def _candidate(candidate: Candidate) -> dict[str, Any]:
    return {"key": candidate.enrollment_id, "name": candidate.name, "score": candidate.score}


def _identification(result: Identification, *, top_k: bool) -> dict[str, Any]:
    who = result.identified
    out: dict[str, Any] = {
        "name": who.name if who else None,
        "key": who.enrollment_id if who else None,
        "score": result.score,
        "unknown_probability": result.unknown_probability,
    }
    if top_k:
        out["candidates"] = [_candidate(c) for c in result.candidates]
    return out


def identification(
    results: list[Identification], *, all_faces: bool, top_k: bool
) -> dict[str, Any]:
    """The largest face at the top level (as the seed answered); every face under ``faces``."""
    out = _identification(results[0], top_k=top_k)
    if all_faces:
        out["faces"] = [
            {"bounding_box": bounding_box(r.face), **_identification(r, top_k=top_k)}
            for r in results
        ]
    return out

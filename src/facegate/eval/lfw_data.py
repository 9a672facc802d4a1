"""LFW's pair lists and the rule for which face in an LFW image is the labelled one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facegate.engine.types import DetectedFace


@dataclass(frozen=True)
class Pair:
    first: str  # path relative to the LFW folder
    second: str
    same: bool
    fold: int


def image_path(name: str, number: int | str) -> str:
    return f"lfw-deepfunneled/{name}/{name}_{int(number):04d}.jpg"


def read_pairs(path: Path, pairs_per_fold: int | None = None) -> list[Pair]:
    """Parse pairs.txt (with its "folds<TAB>n" header) or a headerless dev list (one fold)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(lines[0]) == 2 and lines[0][0].isdigit():
        folds, per_half = int(lines[0][0]), int(lines[0][1])
        lines = lines[1:]
        fold_size = 2 * per_half
    else:
        folds, fold_size = 1, len(lines)
    pairs = []
    for index, fields in enumerate(lines):
        fold = min(index // fold_size, folds - 1)
        if len(fields) == 3:
            pairs.append(
                Pair(image_path(fields[0], fields[1]), image_path(fields[0], fields[2]), True, fold)
            )
        elif len(fields) == 4:
            pairs.append(
                Pair(
                    image_path(fields[0], fields[1]), image_path(fields[2], fields[3]), False, fold
                )
            )
        else:
            raise ValueError(f"{path}: line {index + 1} is not a pair: {fields}")
    if pairs_per_fold:
        pairs = _subset(pairs, pairs_per_fold)
    return pairs


def _subset(pairs: list[Pair], per_fold: int) -> list[Pair]:
    """The first per_fold/2 matched and mismatched pairs of each fold, keeping the balance."""
    kept: list[Pair] = []
    for fold in sorted({p.fold for p in pairs}):
        for same in (True, False):
            kept += [p for p in pairs if p.fold == fold and p.same == same][: per_fold // 2]
    return kept


def labelled_face(faces: list[DetectedFace], width: int, height: int) -> DetectedFace | None:
    """LFW's rule: the labelled face is the one covering the centre pixel (else the nearest)."""
    if not faces:
        return None
    cx, cy = width / 2, height / 2

    def key(face: DetectedFace) -> tuple[bool, float]:
        x1, y1, x2, y2 = face.box
        covers = x1 <= cx <= x2 and y1 <= cy <= y2
        fx, fy = (x1 + x2) / 2, (y1 + y2) / 2
        return (not covers, (fx - cx) ** 2 + (fy - cy) ** 2)

    return min(faces, key=key)


def central_box(width: int, height: int) -> tuple[float, float, float, float]:
    """Where deep-funnelled LFW puts the face: used when no detector finds one."""
    return (width * 0.3, height * 0.28, width * 0.7, height * 0.75)

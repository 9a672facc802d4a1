"""Which face counts as "the largest" when one face is wanted."""

from __future__ import annotations

import numpy as np

from facegate.engine.types import DetectedFace, by_prominence


def _face(x1: float, y1: float, side: float) -> DetectedFace:
    return DetectedFace((x1, y1, x1 + side, y1 + side), 0.9, np.zeros((5, 2), np.float32))


def test_a_clearly_larger_face_comes_first_wherever_it_is() -> None:
    centred, corner = _face(80, 80, 90), _face(0, 0, 120)
    assert by_prominence([centred, corner], 250, 250) == [corner, centred]


def test_of_two_faces_of_about_one_size_the_centred_one_comes_first() -> None:
    # LFW's funnelled crops: the labelled person in the middle, a neighbour cut by the edge.
    centred, neighbour = _face(80, 70, 100), _face(160, 60, 105)
    assert by_prominence([neighbour, centred], 250, 250) == [centred, neighbour]


def test_the_rest_stay_largest_first() -> None:
    faces = [_face(10, 10, 20), _face(100, 100, 50), _face(0, 0, 52), _face(200, 0, 30)]
    ordered = by_prominence(faces, 300, 300)
    assert ordered[0] is faces[1]
    assert [f.area for f in ordered[1:]] == sorted((f.area for f in ordered[1:]), reverse=True)
    assert by_prominence([], 10, 10) == []

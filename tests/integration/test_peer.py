"""The peer's import leaves this process's image decoding strict."""

from __future__ import annotations

import pytest
from PIL import ImageFile

from facegate.engine.decode import decode_image
from facegate.errors import TruncatedImage
from facegate.eval.peer import load_face_recognition
from tests.factories import encode, grace_hopper_rgb

pytestmark = pytest.mark.integration


def test_loading_the_peer_keeps_truncated_images_refused() -> None:
    assert load_face_recognition().__name__ == "face_recognition"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = encode(grace_hopper_rgb())
    with pytest.raises(TruncatedImage):
        decode_image(data[: len(data) // 2], max_bytes=1 << 24, max_pixels=1 << 24)

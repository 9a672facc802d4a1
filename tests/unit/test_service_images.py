"""Base64 as clients really send it, and errors that name the image they concern."""

from __future__ import annotations

import base64

import pytest

from facegate.errors import EmptyImage, ImageTooLarge, InvalidImage
from facegate.service.images import decode_base64

PAYLOAD = bytes(range(256)) * 3


def _decode(value: object) -> bytes:
    return decode_base64(value, "img4", max_bytes=10_000)


@pytest.mark.parametrize(
    "encoded",
    [
        base64.b64encode(PAYLOAD).decode(),
        base64.b64encode(PAYLOAD).decode().rstrip("="),
        base64.urlsafe_b64encode(PAYLOAD).decode(),
        "data:image/jpeg;base64," + base64.b64encode(PAYLOAD).decode(),
        "DATA:image/png;charset=utf-8;base64," + base64.b64encode(PAYLOAD).decode(),
        base64.encodebytes(PAYLOAD).decode(),  # MIME line breaks every 76 characters
    ],
)
def test_accepted_spellings(encoded: str) -> None:
    assert _decode(encoded) == PAYLOAD


def test_missing_padding_of_every_length() -> None:
    for size in (1, 2, 3, 4, 5):
        assert _decode(base64.b64encode(PAYLOAD[:size]).decode().rstrip("=")) == PAYLOAD[:size]


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        ("", EmptyImage, "empty"),
        ("====", EmptyImage, "empty"),
        ("abc$def", InvalidImage, "invalid base64"),
        ("abcde", InvalidImage, "impossible"),
        ("data:image/png,notbase64", InvalidImage, "data URI"),
        (42, InvalidImage, "a number"),
        (None, InvalidImage, "null"),
        ("A" * 20_000, ImageTooLarge, "10000"),
    ],
)
def test_refusals_name_the_field(value: object, error: type[Exception], fragment: str) -> None:
    with pytest.raises(Exception) as caught:
        _decode(value)
    assert isinstance(caught.value, error) or (
        error is InvalidImage and caught.value.__class__.__name__ == "BadRequest"
    )
    message = str(caught.value)
    assert message.startswith("img4: ") and fragment in message

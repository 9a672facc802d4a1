"""Decoding: every way an upload can be wrong gets its own precise error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facegate.engine.decode import decode_image, decoded_size
from facegate.errors import (
    EmptyImage,
    ImageTooExpansive,
    ImageTooLarge,
    ImageTooManyPixels,
    InvalidImage,
    TruncatedImage,
)

LIMITS = {"max_bytes": 2 * 1024 * 1024, "max_pixels": 40_000_000}


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (height, 1))] * 3, axis=-1)
    rgb[..., 1] = 80
    return Image.fromarray(rgb)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_decodes_supported_formats_to_rgb(fmt: str) -> None:
    decoded = decode_image(_encode(_gradient(), fmt), **LIMITS)
    assert decoded.rgb.shape == (48, 64, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.format == fmt


def test_greyscale_becomes_three_equal_channels() -> None:
    decoded = decode_image(_encode(_gradient().convert("L"), "PNG"), **LIMITS)
    assert decoded.rgb.shape == (48, 64, 3)
    assert np.array_equal(decoded.rgb[..., 0], decoded.rgb[..., 2])


def test_transparent_pixels_become_white() -> None:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    decoded = decode_image(_encode(rgba, "PNG"), **LIMITS)
    assert (decoded.rgb == 255).all()


def test_sixteen_bit_greyscale_is_stretched_not_clipped() -> None:
    array = np.linspace(0, 65535, 100, dtype=np.uint16).reshape(10, 10)
    decoded = decode_image(_encode(Image.fromarray(array), "PNG"), **LIMITS)
    assert decoded.rgb.min() == 0 and decoded.rgb.max() == 255


def test_exif_orientation_is_applied() -> None:
    image = _gradient(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    decoded = decode_image(_encode(image, "JPEG", exif=exif), **LIMITS)
    assert decoded.rgb.shape == (64, 48, 3)


def test_empty_input() -> None:
    with pytest.raises(EmptyImage, match="empty"):
        decode_image(b"", **LIMITS)


def test_not_an_image() -> None:
    with pytest.raises(InvalidImage, match="not a JPEG, PNG or WebP"):
        decode_image(b"hello, this is text and not a picture" * 10, **LIMITS)


def test_unsupported_format_is_refused() -> None:
    with pytest.raises(InvalidImage):
        decode_image(_encode(_gradient(), "BMP"), **LIMITS)


def test_truncated_jpeg() -> None:
    data = _encode(_gradient(256, 256), "JPEG", quality=95)
    with pytest.raises(TruncatedImage, match="truncated"):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_truncated_png() -> None:
    data = _encode(_gradient(256, 256), "PNG")
    with pytest.raises(TruncatedImage):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_over_the_byte_limit() -> None:
    data = _encode(_gradient(), "PNG")
    with pytest.raises(ImageTooLarge, match=f"limit is {len(data) - 1} bytes"):
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**9)


def test_over_the_pixel_limit_is_refused_from_the_header() -> None:
    with pytest.raises(ImageTooManyPixels, match="limit is 1000 pixels"):
        decode_image(_encode(_gradient(64, 48), "PNG"), max_bytes=10**7, max_pixels=1000)


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG claiming a huge canvas (greyscale, all-zero rows compressed to a few KB)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    data = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _png_bomb(30000, 30000)
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooManyPixels):
        decode_image(bomb, **LIMITS)


def test_bomb_below_pillows_own_guard_is_refused_by_ours() -> None:
    bomb = _png_bomb(8000, 6000)  # 48 Mpx: above our 40 Mpx default, below Pillow's guard
    with pytest.raises(ImageTooManyPixels, match="8000x6000"):
        decode_image(bomb, **LIMITS)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows(orientation: int) -> None:
    from PIL import ImageOps

    rgb = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(rgb), "PNG", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(decode_image(data, **LIMITS).rgb, expected)


def test_a_large_jpeg_is_decoded_at_reduced_resolution() -> None:
    data = _encode(_gradient(4000, 3000), "JPEG", quality=80)
    decoded = decode_image(data, **LIMITS, target_side=1920)
    # 1/2 keeps the longer side at 2000 >= 1920; 1/4 would not.
    assert (decoded.width, decoded.height, decoded.scale) == (2000, 1500, 2.0)
    corner = decoded.to_sent(np.array([[2000, 1500]], np.float32))
    assert corner.tolist() == [[4000.0, 3000.0]]


def test_draft_mode_only_when_far_larger_than_needed() -> None:
    data = _encode(_gradient(3000, 2000), "JPEG")
    assert decode_image(data, **LIMITS, target_side=1920).scale == 1.0
    assert (
        decode_image(_encode(_gradient(4000, 3000), "PNG"), **LIMITS, target_side=1920).scale == 1
    )


def test_the_pixel_limit_counts_the_pixels_decoded() -> None:
    data = _encode(_gradient(4000, 3000), "JPEG", quality=60)
    limits = {"max_bytes": 10**8, "max_pixels": 2_000_000}
    assert decode_image(data, **limits, target_side=1000).scale == 4.0
    with pytest.raises(ImageTooManyPixels, match="4000x3000, decoded at 2000x1500"):
        decode_image(data, **limits, target_side=1920)


def test_a_crop_around_a_face_keeps_the_upload_coordinates() -> None:
    data = _encode(_gradient(4000, 3000), "JPEG", quality=60)
    decoded = decode_image(data, **LIMITS, target_side=1920)
    crop = decoded.around((1000.0, 1000.0, 1200.0, 1200.0), margin=1.0)
    assert crop.origin == (800.0, 800.0) and (crop.width, crop.height) == (300, 300)
    point = np.array([[1100.0, 1100.0]], np.float32)
    assert crop.to_pixels(point).tolist() == [[150.0, 150.0]]
    x, y = (int(v) for v in decoded.to_pixels(point)[0])
    assert np.array_equal(crop.rgb[150, 150], decoded.rgb[y, x])


def test_transparency_and_high_depth_in_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bands of a few rows: the banded conversions must give the whole-image answer.
    monkeypatch.setattr("facegate.engine.decode.BAND_PIXELS", 7)
    rgba = np.zeros((9, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.arange(9, dtype=np.uint8)[:, None] * 30
    decoded = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"), **LIMITS)
    alpha = rgba[..., 3].astype(np.float64) / 255
    assert np.abs(decoded.rgb[..., 0] - (200 * alpha + 255 * (1 - alpha))).max() <= 1
    deep = np.arange(45, dtype=np.uint16).reshape(9, 5) * 1000
    grey = decode_image(_encode(Image.fromarray(deep), "PNG"), **LIMITS).rgb[..., 0]
    assert grey[0, 0] == 0 and grey[-1, -1] == 255 and (np.diff(grey.ravel()) >= 0).all()


EXPANSION = {"max_expansion": 3.0, "expansion_floor_bytes": 24_000_000}


def test_a_small_png_of_a_huge_canvas_is_refused_from_the_header() -> None:
    """Issue 12: a 131 KB 6300x6300 PNG cost +294 MB decoded; it is refused before decoding."""
    data = _encode(Image.new("RGB", (6300, 6300), (200, 180, 160)), "PNG")
    with pytest.raises(ImageTooExpansive) as refused:
        decode_image(data, **LIMITS, target_side=1920, **EXPANSION)
    message = refused.value.message
    assert f"6300x6300 pixels in {len(data)} bytes" in message
    assert f"decodes to {6300 * 6300 * 3} bytes" in message
    assert "above 24000000 decoded bytes" in message and "at most 3 times its size" in message
    assert "Send it as a JPEG, or scaled down to at most 2828 pixels" in message
    assert "FACEGATE_MAX_IMAGE_EXPANSION" in message
    assert refused.value.status == 413 and refused.value.code == "image_too_expansive"


def test_the_expansion_limit_lets_ordinary_images_through() -> None:
    # Within the floor, anything: a flat 2500x2500 PNG (18.75 MB decoded from a few KB).
    flat = _encode(Image.new("RGB", (2500, 2500), (10, 20, 30)), "PNG")
    assert decode_image(flat, **LIMITS, **EXPANSION).width == 2500
    # Above it, an image of noise (a PNG photo's worst case: it barely compresses).
    noise = np.random.default_rng(0).integers(0, 256, (3000, 3000, 3), dtype=np.uint8)
    photo = _encode(Image.fromarray(noise), "PNG")
    assert len(photo) * 3 > 3000 * 3000 * 3 > 24_000_000
    limits = {"max_bytes": 10**8, "max_pixels": 40_000_000}
    assert decode_image(photo, **limits, **EXPANSION).width == 3000
    # 0: no check (the flat canvas above the floor decodes whole).
    big = _encode(Image.new("RGB", (3500, 3500), (10, 20, 30)), "PNG")
    assert decode_image(big, **LIMITS, max_expansion=0).width == 3500
    with pytest.raises(ImageTooExpansive):
        decode_image(big, **LIMITS, **EXPANSION)


def test_a_jpeg_over_the_expansion_limit_is_decoded_smaller_instead() -> None:
    data = _encode(Image.new("RGB", (6300, 6300), (200, 180, 160)), "JPEG")
    # Draft mode for detection alone gives 3150x3150 (29.8 MB): over the floor, so 1/4.
    assert decode_image(data, **LIMITS, target_side=1920, max_expansion=0).scale == 2.0
    decoded = decode_image(data, **LIMITS, target_side=1920, **EXPANSION)
    assert (decoded.width, decoded.scale) == (1575, 4.0)
    assert decoded_size(data, target_side=1920, **EXPANSION) == (
        (6300, 6300),
        (1575, 1575),
        1575 * 1575 * 3,
    )

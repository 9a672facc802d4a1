"""``facegate bench memory``: the server's resident memory per request, against its body.

A real ``facegate serve`` on 127.0.0.1 (defaults, or the ``FACEGATE_*`` variables of this
process's environment), real HTTP. For each item the server's peak RSS is restarted from its
current RSS (Linux's ``/proc/PID/clear_refs``), the requests are sent (some at once), and the
peak (``VmHWM``) and the RSS afterwards are read from ``/proc/PID/status``. Each line gives the
item's extra RSS (peak minus the RSS before it) beside 8x its bodies (issue 12's goal) and,
for one image, its decoded size (width x height x bands, after JPEG draft mode) against its
bytes, the figure ``FACEGATE_MAX_IMAGE_EXPANSION`` bounds.

The items: ordinary photos (Grace Hopper's JPEG, the astronaut PNG, the 1280x886 group photo as
JPEG and as PNG, a 4000x3000 phone JPEG of ~2.5 MB), flat PNG canvases of growing size (what a
warm server handles without growing: the floor), issue 12's 6300x6300 PNG (131 KB; one, then
six at once) and the same canvas as a JPEG, item 4's 27 MB enroll body padded with 9 million
empty objects (one, then four at once), and ten 6300x6300 PNGs in one enrollment.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from facegate.config import Settings
from facegate.engine.decode import decoded_size
from facegate.eval.load_bench import REQUEST_TIMEOUT_S, b64, sample_photos, start_server
from facegate.eval.threads import run_timed
from facegate.service.keys import create_key

# issue 12's goal: a request's extra memory at most this many times its body.
BODY_FACTOR = 8
MB = 1024 * 1024


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _flat(side: int, fmt: str = "PNG") -> bytes:
    return _encoded(Image.new("RGB", (side, side), (200, 180, 160)), fmt)


def phone_jpeg(group: bytes) -> bytes:
    """The group photo at 4000x3000 with a phone sensor's noise: ~2.5 MB at quality 90."""
    rgb = (
        Image.open(io.BytesIO(group)).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    )
    noise = np.random.default_rng(12).normal(0, 5, (3000, 4000, 3)).astype(np.float32)
    noisy = np.clip(np.asarray(rgb, np.float32) + noise, 0, 255).astype(np.uint8)
    return _encoded(Image.fromarray(noisy), "JPEG", quality=90)


def _astronaut_png() -> bytes:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("facegate bench memory: the astronaut photo comes from scikit-image")
    return Path(next(iter(spec.submodule_search_locations)), "data", "astronaut.png").read_bytes()


def _decoded(data: bytes, settings: Settings) -> str:
    """``WxH, N decoded bytes = R x the file`` as the server will see it (draft mode too)."""
    sent, decoded, size = decoded_size(
        data,
        target_side=settings.detect_max_side,
        max_expansion=settings.max_image_expansion,
        expansion_floor_bytes=settings.image_expansion_floor_bytes,
    )
    text = f"{sent[0]}x{sent[1]} {Image.open(io.BytesIO(data)).format}"
    if decoded != sent:
        text += f" (drafted to {decoded[0]}x{decoded[1]})"
    return f"{text}, {size / MB:.1f} MB decoded = {size / len(data):.1f}x the file"


@dataclass(frozen=True)
class Item:
    name: str
    path: str
    content: bytes | None = None  # raw image (content_type) or JSON bytes
    json: dict[str, str] | None = None
    content_type: str = "application/json"
    parallel: int = 1
    image: bytes | None = None  # the one image, to describe its decoded size


def _items() -> list[Item]:
    photos = sample_photos()
    group = Image.open(io.BytesIO(photos.group)).convert("RGB")
    png6300 = _flat(6300)
    phone = phone_jpeg(photos.group)

    def raw(name: str, data: bytes, parallel: int = 1) -> Item:
        kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        return Item(name, "/facedetect", data, None, kind, parallel, data)

    padded = (
        b'{"img0": "' + b64(photos.grace).encode() + b'", "pad": [' + b"{}," * 9_000_000 + b"{}]}"
    )
    return [
        raw("Grace Hopper JPEG, facedetect", photos.grace),
        raw("astronaut PNG, facedetect", _astronaut_png()),
        raw("group photo JPEG, facedetect", photos.group),
        raw("group photo as PNG, facedetect", _encoded(group, "PNG")),
        Item("group photo JPEG, base64 enroll", "/enroll", json={"img0": b64(photos.group)}),
        raw("4000x3000 phone JPEG, facedetect", phone),
        *(raw(f"flat {side}x{side} PNG, facedetect", _flat(side)) for side in (1500, 2500, 3500)),
        raw("item 3: 6300x6300 PNG, facedetect", png6300),
        raw("item 3: 6300x6300 PNG, facedetect", png6300, parallel=6),
        raw("6300x6300 flat JPEG, facedetect", _flat(6300, "JPEG")),
        Item("item 4: 27 MB padded enroll", "/enroll", padded),
        Item("item 4: 27 MB padded enroll", "/enroll", padded, parallel=4),
        Item(
            "ten 6300x6300 PNGs in one enroll",
            "/enroll",
            json={f"img{i}": b64(png6300) for i in range(10)},
        ),
    ]


def run_memory_bench(report: Callable[[str], None] = print) -> int:
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("facegate bench memory: needs Linux's /proc (VmHWM, clear_refs)")
    settings = Settings()
    items = _items()
    with tempfile.TemporaryDirectory(prefix="facegate-memory-") as folder:
        root = Path(folder)
        key = create_key(Settings(data_dir=root / "data"), "memory").secret
        server = start_server(root, "server")
        pid = server.process.pid
        http = httpx.Client(
            base_url=f"{server.url}/v1", headers={"x-api-key": key}, timeout=REQUEST_TIMEOUT_S
        )
        try:
            photos = sample_photos()
            http.post("/facedetect", content=photos.group, headers={"content-type": "image/jpeg"})
            report(
                f"facegate bench memory: server RSS {_status_mb(pid, 'VmRSS'):.0f} MB after one "
                f"facedetect (models loaded); image expansion limit "
                f"{settings.max_image_expansion:g}x above "
                f"{settings.image_expansion_floor_bytes} bytes decoded (0: off); MB = 2^20 bytes"
            )
            for item in items:
                _case(item, http, pid, settings, report)
            report(f"final RSS {_status_mb(pid, 'VmRSS'):.0f} MB")
        finally:
            http.close()
            server.stop()
    return 0


def _case(
    item: Item, http: httpx.Client, pid: int, settings: Settings, report: Callable[[str], None]
) -> None:
    content = item.content
    if content is None:
        content = httpx.Request("POST", "/", json=item.json).read()
    headers = {"content-type": item.content_type}
    before = _status_mb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    statuses: list[int] = []
    codes: list[str] = []

    def send() -> None:
        answer = http.post(item.path, content=content, headers=headers)
        statuses.append(answer.status_code)
        codes.append(answer.headers.get("x-facegate-error", ""))

    wall = run_timed([threading.Thread(target=send) for _ in range(item.parallel)])
    peak = _status_mb(pid, "VmHWM")
    extra = max(0.0, peak - before)
    bodies = len(content) * item.parallel
    allowed = BODY_FACTOR * bodies / MB
    refused = sorted({code for code in codes if code})
    report(
        f"{item.name} x{item.parallel}: body {len(content) / MB:.2f} MB; statuses "
        f"{sorted(statuses)}{' ' + ','.join(refused) if refused else ''}, {wall:.1f} s; "
        f"peak RSS {peak:.0f} MB, extra +{extra:.0f} MB vs {BODY_FACTOR}x the bodies "
        f"{allowed:.1f} MB: {'within' if extra <= allowed else 'OVER'}; "
        f"{_status_mb(pid, 'VmRSS'):.0f} MB after"
        + (f"; {_decoded(item.image, settings)}" if item.image is not None else "")
    )

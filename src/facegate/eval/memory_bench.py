"""``facegate bench memory``: the server's resident memory over issue 12's memory cases.

A real ``facegate serve`` on 127.0.0.1 (defaults), real HTTP. For each case the server's peak
RSS is restarted from its current RSS (Linux's ``/proc/PID/clear_refs``), the requests are sent
(some at once), and the peak (``VmHWM``) and the RSS afterwards are read from
``/proc/PID/status``: item 3's 6300x6300 PNG (one, then six at once), a 4000x3000 phone JPEG,
item 4's 27 MB enroll body padded with 9 million empty objects (one, then four at once), and
ten 6300x6300 PNGs in one enrollment.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from facegate.config import Settings
from facegate.eval.load_bench import REQUEST_TIMEOUT_S, b64, sample_photos, start_server
from facegate.service.keys import create_key


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _flat_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 180, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def _phone_jpeg(group: bytes) -> bytes:
    rgb = (
        Image.open(io.BytesIO(group)).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    )
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(rgb)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run_memory_bench(report: Callable[[str], None] = print) -> int:
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("facegate bench memory: needs Linux's /proc (VmHWM, clear_refs)")
    photos = sample_photos()
    png, phone = _flat_png(6300), _phone_jpeg(photos.group)
    padded = (
        b'{"img0": "' + b64(photos.grace).encode() + b'", "pad": [' + b"{}," * 9_000_000 + b"{}]}"
    )
    ten_pngs = {f"img{i}": b64(png) for i in range(10)}
    with tempfile.TemporaryDirectory(prefix="facegate-memory-") as folder:
        root = Path(folder)
        key = create_key(Settings(data_dir=root / "data"), "memory").secret
        server = start_server(root, "server")
        pid = server.process.pid
        http = httpx.Client(
            base_url=f"{server.url}/v1", headers={"x-api-key": key}, timeout=REQUEST_TIMEOUT_S
        )
        try:
            http.post("/facedetect", content=photos.group, headers={"content-type": "image/jpeg"})
            report(
                f"facegate bench memory: server RSS {_status_mb(pid, 'VmRSS'):.0f} MB after one "
                "facedetect (models loaded)"
            )

            def case(
                name: str, send: Callable[[], httpx.Response], parallel: int, size: int
            ) -> None:
                before = _status_mb(pid, "VmRSS")
                Path(f"/proc/{pid}/clear_refs").write_text("5")
                statuses: list[int] = []
                threads = [
                    threading.Thread(target=lambda: statuses.append(send().status_code))
                    for _ in range(parallel)
                ]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - started
                peak = _status_mb(pid, "VmHWM")
                ratio = (peak - before) * 1024 * 1024 / max(1, size * parallel)
                report(
                    f"{name} x{parallel} (body {size / 1e6:.2f} MB): statuses {sorted(statuses)}, "
                    f"{wall:.1f} s; peak RSS {peak:.0f} MB (+{peak - before:.0f} MB, "
                    f"{ratio:.1f}x the bodies), {_status_mb(pid, 'VmRSS'):.0f} MB after"
                )

            image = {"content-type": "image/png"}
            jpeg = {"content-type": "image/jpeg"}
            json_body = {"content-type": "application/json"}
            for parallel in (1, 6):
                case(
                    "item 3: 6300x6300 PNG facedetect",
                    lambda: http.post("/facedetect", content=png, headers=image),
                    parallel,
                    len(png),
                )
            case(
                "4000x3000 phone JPEG facedetect",
                lambda: http.post("/facedetect", content=phone, headers=jpeg),
                1,
                len(phone),
            )
            for parallel in (1, 4):
                case(
                    "item 4: 27 MB padded enroll",
                    lambda: http.post("/enroll", content=padded, headers=json_body),
                    parallel,
                    len(padded),
                )
            case(
                "ten 6300x6300 PNGs in one enroll",
                lambda: http.post("/enroll", json=ten_pngs),
                1,
                sum(len(v) for v in ten_pngs.values()),
            )
            report(f"final RSS {_status_mb(pid, 'VmRSS'):.0f} MB")
        finally:
            http.close()
            server.stop()
    return 0

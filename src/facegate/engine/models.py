"""ONNX Runtime sessions on the CPU, and how many threads each gets.

Which models exist and where their weights come from is the registry's business
(``engine/registry.py``, entries in ``engine/zoo.py``).
"""

from __future__ import annotations

import os

import onnxruntime as ort

from facegate.config import Settings


def intra_op_threads(settings: Settings) -> int:
    """Threads per model session: the cores shared among concurrent requests, never more."""
    if settings.intra_op_threads > 0:
        return settings.intra_op_threads
    cores = os.cpu_count() or 1
    concurrent = max(1, settings.max_concurrent_inference or 1)
    return max(1, cores // concurrent)


def cpu_session(model: bytes, threads: int, *, spin: bool = False) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads.

    Idle pool threads do not spin (``spin`` exists to measure why): by default they busy-wait
    for the next job, and MTCNN runs several small sessions back to back, so one session's
    spinning threads held the cores the next one needed. With 2 threads on 2 cores that made
    detection 2-3x slower than with one; without spinning, 2 threads leave detection as fast and
    the ResNet 1.3-1.8x faster (``facegate bench DATA --detector``, BENCHMARKS.md).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

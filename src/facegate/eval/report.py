"""The figures of a ``facegate eval`` command as JSON beside its printed text, and the ROC and
DET plots of its verification scores.

A command runs inside :func:`reporting`; the evaluation code calls :func:`record` (named
figures) and :func:`record_curve` (scores and truths of pairs) wherever it prints figures. Both do
nothing outside a report, so the evaluation functions stay usable from tests and notebooks.
The JSON holds the figures, a summary of each curve (EER, AUC, TAR at fixed FARs), the printed
text and the plots' paths. matplotlib (a dev dependency) draws the plots; it is imported only
when there is a curve to draw, and without it the JSON says so and no PNG is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from facegate import __version__

FARS = (0.0001, 0.001, 0.01, 0.1)
# ROC/DET points kept per curve in the JSON (the plots use every point).
_JSON_POINTS = 200

_current: ContextVar[Report | None] = ContextVar("facegate_eval_report", default=None)


@dataclass(frozen=True)
class Curve:
    label: str
    scores: NDArray[np.float64]
    same: NDArray[np.bool_]

    def rates(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """False match rate and false non-match rate at every threshold, loosest first."""
        order = np.argsort(-self.scores, kind="stable")
        same = self.same[order]
        genuine, impostor = max(1, int(same.sum())), max(1, int((~same).sum()))
        accepted_genuine = np.concatenate([[0], np.cumsum(same)])
        accepted_impostor = np.concatenate([[0], np.cumsum(~same)])
        fmr = accepted_impostor / impostor
        fnmr = 1.0 - accepted_genuine / genuine
        return fmr.astype(np.float64), fnmr.astype(np.float64)

    def summary(self) -> dict[str, Any]:
        fmr, fnmr = self.rates()
        genuine, impostor = int(self.same.sum()), int((~self.same).sum())
        out: dict[str, Any] = {
            "label": self.label,
            "pairs": len(self.scores),
            "genuine": genuine,
            "impostor": impostor,
        }
        if not genuine or not impostor:
            out["note"] = "no ROC without both matched and mismatched pairs"
            return out
        crossing = int(np.argmin(np.abs(fmr - fnmr)))
        out["eer"] = float((fmr[crossing] + fnmr[crossing]) / 2)
        tar = 1.0 - fnmr
        out["auc"] = float(np.sum(np.diff(fmr) * (tar[1:] + tar[:-1]) / 2))
        for far in FARS:
            allowed = np.flatnonzero(fmr <= far)
            out[f"tar_at_far_{far:g}"] = float(1.0 - fnmr[allowed[-1]])
        step = max(1, len(fmr) // _JSON_POINTS)
        out["roc"] = {
            "fmr": fmr[::step].round(6).tolist(),
            "tar": (1 - fnmr[::step]).round(6).tolist(),
        }
        return out


@dataclass
class Report:
    command: str
    argv: list[str]
    started: float = field(default_factory=time.time)
    figures: list[dict[str, Any]] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    text: io.StringIO = field(default_factory=io.StringIO)

    def write(self, path: Path) -> dict[str, Any]:
        """The JSON at ``path``; with curves, ``<stem>-roc.png`` and ``<stem>-det.png`` too."""
        path.parent.mkdir(parents=True, exist_ok=True)
        plots, missing = self._plots(path)
        document = {
            "command": self.command,
            "argv": self.argv,
            "facegate": __version__,
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "seconds": round(time.time() - self.started, 1),
            "figures": self.figures,
            "curves": [c.summary() for c in self.curves],
            "plots": [str(p) for p in plots],
            "text": self.text.getvalue().splitlines(),
        }
        if missing:
            document["plots_missing"] = missing
        path.write_text(json.dumps(_finite(document), indent=2, ensure_ascii=False) + "\n")
        return document

    def _plots(self, path: Path) -> tuple[list[Path], str | None]:
        drawable = [c for c in self.curves if c.same.any() and (~c.same).any()]
        if not drawable:
            return [], None
        try:
            import matplotlib

            matplotlib.use("Agg")  # files only: no display, whatever the machine has
            import matplotlib.pyplot as plt
        except ImportError:
            return [], "matplotlib is not installed (a dev dependency): pip install matplotlib"
        roc_path = path.with_name(f"{path.stem}-roc.png")
        det_path = path.with_name(f"{path.stem}-det.png")
        figure, axis = plt.subplots(figsize=(7, 5.5), dpi=120)
        for curve in drawable:
            fmr, fnmr = curve.rates()
            axis.plot(np.maximum(fmr, 1e-5), 1 - fnmr, label=curve.label, linewidth=1.2)
        axis.set_xscale("log")
        axis.set_xlim(1e-4, 1)
        axis.set_xlabel("false match rate (log)")
        axis.set_ylabel("true match rate")
        axis.set_title(f"ROC: facegate {self.command}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6, loc="lower right")
        figure.tight_layout()
        figure.savefig(roc_path)
        plt.close(figure)
        figure, axis = plt.subplots(figsize=(7, 5.5), dpi=120)
        ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
        for curve in drawable:
            fmr, fnmr = curve.rates()
            axis.plot(_probit(fmr), _probit(fnmr), label=curve.label, linewidth=1.2)
        axis.set_xticks([_probit_one(t) for t in ticks], [f"{100 * t:g} %" for t in ticks])
        axis.set_yticks([_probit_one(t) for t in ticks], [f"{100 * t:g} %" for t in ticks])
        low, high = _probit_one(0.0005), _probit_one(0.6)
        axis.set_xlim(low, high)
        axis.set_ylim(low, high)
        axis.set_xlabel("false match rate (normal deviate scale)")
        axis.set_ylabel("false non-match rate (normal deviate scale)")
        axis.set_title(f"DET: facegate {self.command}")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=6, loc="upper right")
        figure.tight_layout()
        figure.savefig(det_path)
        plt.close(figure)
        return [roc_path, det_path], None


_NORMAL = statistics.NormalDist()


def _probit_one(rate: float) -> float:
    return _NORMAL.inv_cdf(min(max(rate, 1e-6), 1 - 1e-6))


def _probit(rates: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([_probit_one(float(r)) for r in rates])


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def record(section: str, **figures: Any) -> None:
    """Named figures of the running report (nothing outside one)."""
    report = _current.get()
    if report is not None:
        report.figures.append({"section": section, **figures})


def record_curve(label: str, scores: NDArray[Any], same: NDArray[np.bool_]) -> None:
    """Verification scores (higher = more alike) and truths, for the ROC and DET plots."""
    report = _current.get()
    if report is not None:
        report.curves.append(
            Curve(label, np.asarray(scores, np.float64).copy(), np.asarray(same, bool).copy())
        )


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def reporting(command: str, argv: list[str], path: Path) -> Iterator[Report]:
    """Run a command's body with a report: its stdout is kept too, and the JSON (and plots)
    are written at ``path`` when the body ends, also when it fails part way."""
    report = Report(command, argv)
    token = _current.set(report)
    try:
        with contextlib.redirect_stdout(_Tee(sys.stdout, report.text)):  # type: ignore[type-var]
            yield report
    finally:
        _current.reset(token)
        document = report.write(path)
        print(f"figures written to {path}")
        for plot in document["plots"]:
            print(f"plot written to {plot}")
        if "plots_missing" in document:
            print(f"no plots: {document['plots_missing']}")

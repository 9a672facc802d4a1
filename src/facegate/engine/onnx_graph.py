"""A small helper for writing ONNX graphs by hand: fresh names, constants, nodes, the model.

Shared by the converters of dlib's ResNet (``resnet_onnx``), MTCNN (``mtcnn_graphs``) and the
spoof detector's MobileNetV2 (``facegate.engine.spoof.mobilenet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper


class GraphBuilder:
    """Nodes and initialisers of one graph; every node is named after its output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def const(self, array: NDArray[Any], prefix: str = "w") -> str:
        """An initialiser holding ``array`` as it is (its dtype kept)."""
        name = self.fresh(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(
        self, op_type: str, inputs: Sequence[str], output: str | None = None, **attrs: Any
    ) -> str:
        out = output or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def model(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        *,
        opset: int,
        ir_version: int = 8,
        producer_name: str = "facegate",
        producer_version: str = "",
    ) -> onnx.ModelProto:
        """The checked model of the nodes written so far."""
        graph = helper.make_graph(self.nodes, name, list(inputs), list(outputs), self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset)],
            producer_name=producer_name,
            producer_version=producer_version,
        )
        model.ir_version = ir_version  # readable by every onnxruntime facegate supports
        onnx.checker.check_model(model)
        return model

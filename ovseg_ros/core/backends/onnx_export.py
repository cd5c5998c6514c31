"""Exporting the dense CLIP encoder to ONNX, and its int8 dynamic quantisation.

The graph takes the pixels and the positional table as inputs, so one file serves every input
size and batch: (pixels (B, 3, H, W) normalised, H and W multiples of the patch; table
(1 + h * w, W)) -> (dense (B, D, h, w), g (B, W, h, w)), exactly `DenseClipEncoder`'s outputs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..maskclip import DenseClipEncoder
from .choice import Int8Settings

INPUTS = ("pixels", "table")
OUTPUTS = ("dense", "g")
# Above this many parameter bytes the weights go to a side file (protobuf's 2 GB limit).
EXTERNAL_DATA_BYTES = 1_500_000_000


class DenseGraph(nn.Module):
    """`DenseClipEncoder.forward_with_table` as a module with two tensor inputs (for export)."""

    def __init__(self, encoder: DenseClipEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, pixels: torch.Tensor, table: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder.forward_with_table(pixels, table)


def parameter_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@contextlib.contextmanager
def mha_fast_path_disabled() -> Iterator[None]:
    """nn.MultiheadAttention's inference fast path (a fused native op) has no ONNX form."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Raise these loggers to ERROR for the duration (the exporter's INFO/WARNING chatter)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_dense(encoder: DenseClipEncoder, path: Path) -> list[Path]:
    """Write the fp32 CPU graph of `encoder` to `path` (plus `path.data` for models over 1.5
    GB of weights). Dynamic batch, height and width. `encoder`: fp32 on the CPU (what the
    graph computes in). Returns the files written."""
    from torch.export import Dim

    weight = encoder.visual.conv1.weight
    if weight.dtype != torch.float32 or weight.device.type != "cpu":
        raise ValueError(f"export needs the fp32 CPU encoder, got {weight.dtype} on "
                         f"{weight.device}")
    encoder.eval()
    patch = encoder.patch
    # Example sizes above 1 on every dynamic axis: the exporter specialises sizes 0 and 1.
    pixels = torch.zeros(2, 3, 2 * patch, 3 * patch)
    table = encoder.pos(2, 3).detach().float()
    shapes = {"pixels": {0: Dim("batch", min=1), 2: patch * Dim("grid_h", min=1),
                         3: patch * Dim("grid_w", min=1)},
              "table": {0: Dim("tokens", min=2)}}
    external = parameter_bytes(encoder) > EXTERNAL_DATA_BYTES
    with torch.no_grad(), mha_fast_path_disabled(), _quiet("onnxscript", "torch.onnx"):
        torch.onnx.export(DenseGraph(encoder).eval(), (pixels, table), str(path), dynamo=True,
                          input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_shapes=shapes, external_data=external, verbose=False)
    data = path.with_name(path.name + ".data")
    return [path, data] if data.exists() else [path]


class _DropPreprocessAdvice(logging.Filter):
    """The quantiser's root-logger advice to run its pre-processing: measured, not needed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantise_int8(source: Path, target: Path, settings: Int8Settings) -> list[Path]:
    """Dynamic int8 quantisation of `source`'s MatMul/Gemm weights (and with
    `settings.attention` the attention's activation x activation MatMuls) into `target`.

    The patch convolution, layer norms and softmax stay fp32. Returns the files written."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    external = source.with_name(source.name + ".data").exists()
    root = logging.getLogger()
    advice = _DropPreprocessAdvice()
    root.addFilter(advice)
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8,
                         per_channel=settings.per_channel, reduce_range=settings.reduce_range,
                         op_types_to_quantize=["MatMul", "Gemm"],
                         use_external_data_format=external,
                         extra_options={"MatMulConstBOnly": not settings.attention})
    finally:
        root.removeFilter(advice)
    data = target.with_name(target.name + ".data")
    return [target, data] if data.exists() else [target]

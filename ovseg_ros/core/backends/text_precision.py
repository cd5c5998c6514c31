"""Which dtype the text tower runs in: the image path's `precision` rules, and on the CPU for
`auto` the same kind of measurement (`probe.decide`, cached per machine), timed on the text
tower encoding one class name's prompts.

The candidates follow the image path's rule (`probe.candidates` with backend torch): fp32
always, bf16/fp16 only where the CPU runs them natively; an explicit precision is used as is
(int8 means fp32 here: the torch parts of an int8 runtime are fp32). CUDA runs the runtime's
dtype. The text tower is small beside a frame, but a vocabulary of 250 names runs it 20,000
times, so its dtype is chosen on its own: the image tower may run bf16 while text runs fp32.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import SegmenterConfig
from ..device import Runtime, cpu_has_native_bf16, cpu_has_native_fp16
from ..weights import default_cache_dir
from . import probe
from .onnx_cache import library_versions

log = logging.getLogger(__name__)
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PROBE_NAME = "traffic cone"  # a two-token name, like most vocabularies' entries


@dataclass(frozen=True)
class TextChoice:
    """The text tower's dtype and why."""

    precision: str  # fp32 | bf16 | fp16
    reason: str
    probe: probe.ProbeResult | None = None

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    def describe(self) -> str:
        return f"{self.precision} ({self.reason})"


def text_modules(clip: nn.Module) -> dict[str, nn.Module | torch.Tensor]:
    """The parts of an open_clip CLIP that only the text tower uses."""
    parts = {name: getattr(clip, name) for name in ("token_embedding", "transformer",
                                                    "ln_final", "positional_embedding",
                                                    "text_projection", "attn_mask")
             if getattr(clip, name, None) is not None}
    return parts


def set_text_dtype(clip: nn.Module, dtype: torch.dtype) -> None:
    """Convert the text tower's parts of `clip` to `dtype` in place (from the values they hold:
    call it on fp32 weights, before anything else lowered them)."""
    for name, part in text_modules(clip).items():
        if isinstance(part, nn.Module):
            part.to(dtype)
        elif isinstance(part, nn.Parameter):
            part.data = part.data.to(dtype)
        elif torch.is_floating_point(part):  # the attention mask buffer
            setattr(clip, name, part.to(dtype))


def text_copy(clip: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A module with a copy of `clip`'s text tower in `dtype` (for the probe; the image tower
    is not copied)."""
    shell = nn.Module()
    for name, part in text_modules(clip).items():
        if isinstance(part, nn.Module):
            setattr(shell, name, copy.deepcopy(part).to(dtype))
        elif isinstance(part, nn.Parameter):
            setattr(shell, name, nn.Parameter(part.detach().clone().to(dtype),
                                              requires_grad=False))
        else:
            shell.register_buffer(name, part.to(dtype) if torch.is_floating_point(part)
                                  else part.clone(), persistent=False)
    shell.text_pool_type = getattr(clip, "text_pool_type", "argmax")
    return shell.eval()


class TextForwards:
    """`prepare(candidate)` for the probe: one name's prompts through a copy of the text tower
    in the candidate's dtype."""

    def __init__(self, clip: nn.Module, tokenizer: Callable, device: torch.device,
                 templates: Sequence[str]):
        self.clip, self.tokenizer, self.device = clip, tokenizer, device
        self.templates = tuple(templates)

    def __call__(self, c: probe.Candidate) -> Callable[[], object]:
        from ..text import TextEmbeddingCache

        dtype = _DTYPES[c.precision]
        cache = TextEmbeddingCache(text_copy(self.clip, dtype).to(self.device), self.tokenizer,
                                   Runtime(self.device, dtype), templates=self.templates)
        return lambda: cache._encode([PROBE_NAME])


def choose_text_precision(config: SegmenterConfig, runtime: Runtime, clip: nn.Module,
                          tokenizer: Callable, templates: Sequence[str],
                          cache_dir: Path | None = None,
                          prepare: probe.Prepare | None = None) -> TextChoice:
    """The text tower's dtype for `config` on `runtime`'s device.

    clip: the loaded fp32 model on the CPU (what the probe copies; not modified).
    prepare: the candidates' forwards (default `TextForwards`; a seam for tests).
    """
    requested = config.precision.strip().lower()
    device = runtime.device
    if device.type != "cpu":
        return TextChoice(runtime.precision if runtime.precision in _DTYPES else "fp32",
                          "rule: CUDA runs the runtime's dtype")
    if requested != "auto":
        precision = "fp32" if requested == "int8" else requested
        return TextChoice(precision, "the precision setting" if requested != "int8"
                          else "int8 runs the torch parts in fp32")
    options = probe.candidates("torch", "auto", onnx=False, native_bf16=cpu_has_native_bf16(),
                               native_fp16=cpu_has_native_fp16(), int8=False)
    if config.auto_probe == "off":
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
        return TextChoice(precision, "rule (auto_probe off): native bf16 flag")
    if len(options) < 2:
        return TextChoice(options[0].precision if options else "fp32",
                          "the only candidate allowed here")
    threads = config.threads or torch.get_num_threads()
    key = probe.probe_key(config.model, (0, 0), threads, options, library_versions(),
                          part="text encoder", prompts=len(templates))
    folder = Path(cache_dir or default_cache_dir()) / "probe"
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        prepare = prepare or TextForwards(clip, tokenizer, device, templates)
        result = probe.decide(options, prepare, key, folder, config.auto_probe,
                              min(config.auto_probe_budget_s, 3.0))
    finally:
        torch.set_num_threads(before)
        prepare = None
    if result is None:
        log.warning("text precision auto: no candidate ran in the probe; using fp32")
        return TextChoice("fp32", "rule (no candidate ran)")
    return TextChoice(result.choice.precision, result.reason, result)

"""The core's error types that front ends catch, importable without torch: the `ovseg` command
line answers `--help` and argument errors without loading the model modules."""

from __future__ import annotations


class WeightsError(RuntimeError):
    """Weights are missing, unreachable, corrupt or do not fit the model."""


class DeviceError(RuntimeError):
    """The requested device or precision cannot be used on this machine."""


class NumericalError(RuntimeError):
    """The model produced NaN or Inf (fp16 overflow, corrupt weights): the frame is unusable."""

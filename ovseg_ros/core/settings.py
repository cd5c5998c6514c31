"""The settings schema: one declaration per user-facing setting, read by every front end.

A setting is a dataclass field made with `setting(...)`: its name is the field name, and its
default, doc, range or choices, extra check and whether it may change at run time sit beside
it. The ROS parameters, the launch file's arguments, the `ovseg` CLI options, the parameter
tables in doc/ and config/segment.yaml are all derived from these declarations (or checked
against them by test/node/test_settings_schema.py), so a setting is described in exactly one place.

Torch-free and rclpy-free: the launch file and the docs generator import it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Value = bool | int | float | str | list[str]
Check = Callable[[Any], "str | None"]
KINDS = (bool, int, float, str, list)


class ConfigError(ValueError):
    """One or more settings are invalid; the message names every problem and what is allowed."""


@dataclass(frozen=True)
class Setting:
    """What a user may set: name, type (that of the default), constraints and documentation."""

    name: str
    default: Value
    doc: str
    group: str = ""
    low: float | None = None  # inclusive range for numbers
    high: float | None = None
    choices: tuple[str, ...] = ()
    dynamic: bool = False  # may change while running (else: taken at start-up / configure)
    check: Check | None = None  # further rule; returns the problem or None

    @property
    def kind(self) -> type:
        for kind in KINDS:  # bool before int: True is an int too
            if isinstance(self.default, kind):
                return kind
        raise TypeError(f"setting {self.name}: unsupported default {self.default!r}")

    @property
    def constraints(self) -> str:
        """Human-readable constraints: 'one of: a, b' / 'range [lo, hi]' (empty when none)."""
        parts = []
        if self.choices:
            parts.append("one of: " + ", ".join(self.choices))
        if self.low is not None:
            parts.append(f"range [{_num(self.low)}, {_num(self.high)}]")
        return "; ".join(parts)

    def problem(self, value: Any) -> str | None:
        """None when `value` is acceptable, else the reason, naming the setting."""
        kind = self.kind
        ok = (isinstance(value, bool) if kind is bool
              else isinstance(value, int) and not isinstance(value, bool) if kind is int
              else isinstance(value, (int, float)) and not isinstance(value, bool)
              if kind is float
              else isinstance(value, str) if kind is str
              else isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value))
        if not ok:
            want = "list of strings" if kind is list else kind.__name__
            return f"{self.name} must be a {want}, got {type(value).__name__} {value!r}"
        if kind is float and not math.isfinite(value):
            return f"{self.name} must be finite, got {value}"
        if self.low is not None and not self.low <= value <= self.high:  # type: ignore[operator]
            return f"{self.name}={value} is outside [{_num(self.low)}, {_num(self.high)}]"
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of: {', '.join(self.choices)}"
        return self.check(value) if self.check is not None else None

    def parse(self, text: str) -> Value:
        """A value from text (a launch argument, a CLI word); ConfigError naming the setting.

        bool: true/false (any case); int/float: numbers (an integer is fine for a float);
        list: a YAML list ("['a', 'b']", "[]") or one bare item; str: as given.
        """
        kind, text = self.kind, text.strip()
        try:
            if kind is bool:
                if text.lower() not in ("true", "false"):
                    raise ValueError("expected true or false")
                value: Value = text.lower() == "true"
            elif kind is int:
                value = int(text)
            elif kind is float:
                value = float(text)
            elif kind is list:
                value = _parse_list(text)
            else:
                value = text
        except ValueError as exc:
            raise ConfigError(f"{self.name}: {exc}, got {text!r}") from None
        if (why := self.problem(value)) is not None:
            raise ConfigError(why)
        return value

    def format(self, value: Value) -> str:
        """`value` as the text `parse` reads back (YAML flow style for lists)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + ", ".join(_quote(v) for v in value) + "]"
        if isinstance(value, str):
            return _quote(value)
        return repr(value)


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_list(text: str) -> list[str]:
    if not text.startswith("["):
        return [text] if text else []
    import yaml  # only here: the rest of the module needs nothing outside the stdlib

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f"expected a YAML list like \"['a', 'b']\" ({first})") from None
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise ValueError("expected a YAML list of names like \"['a', 'b']\"")
    return [str(v) for v in value]


def setting(default: Value, doc: str, *, group: str = "", low: float | None = None,
            high: float | None = None, choices: Iterable[str] = (), dynamic: bool = False,
            check: Check | None = None) -> Any:
    """A dataclass field that is a user-facing setting (see `Setting`)."""
    spec = dict(default=default, doc=" ".join(doc.split()), group=group, low=low, high=high,
                choices=tuple(choices), dynamic=dynamic, check=check)
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default),
                                 metadata={"setting": spec})
    return dataclasses.field(default=default, metadata={"setting": spec})


def settings_of(cls: type) -> tuple[Setting, ...]:
    """The settings a dataclass declares, in field order (fields made without `setting`, such
    as internal tuning constants, are not settings)."""
    return tuple(Setting(name=f.name, **f.metadata["setting"])
                 for f in dataclasses.fields(cls) if "setting" in f.metadata)


def problems(config: Any) -> list[str]:
    """Every setting of a dataclass instance whose value is invalid."""
    return [why for s in settings_of(type(config))
            if (why := s.problem(getattr(config, s.name))) is not None]


def check_config(config: Any, extra: Iterable[str | None] = ()) -> None:
    """Raise ConfigError naming every invalid setting of `config` and every extra problem."""
    found = problems(config) + [p for p in extra if p]
    if found:
        raise ConfigError("invalid settings: " + "; ".join(found))


def from_values(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of the settings dataclass `cls` from the entries of `values` it declares
    (others are ignored); lists are copied so that no caller's list is shared."""
    names = {s.name for s in settings_of(cls)}
    return cls(**{k: list(v) if isinstance(v, (list, tuple)) else v
                  for k, v in values.items() if k in names})

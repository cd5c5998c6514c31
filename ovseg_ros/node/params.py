"""The segment node's settings as ROS parameters: descriptors, declaration, change rules.

The settings themselves (names, defaults, ranges, docs) are declared once, in
ovseg_ros.core.config and ovseg_ros.settings.parameters; this module only maps them onto rclpy.
Start-up settings are taken at configure: they may change while the node is unconfigured
(before configure, or after cleanup) and are refused in the other states with the reason.
"""

from __future__ import annotations

from typing import Any

from ovseg_ros.core.settings import Setting
from ovseg_ros.settings.parameters import BY_NAME, SETTINGS

START_UP = ("Start-up setting: read at configure; change it while the node is unconfigured "
            "(autostart false, or after deactivate + cleanup).")
RUNTIME = "Dynamic: may change at any time."


def description(s: Setting, start_up: str = START_UP) -> str:
    return f"{s.doc} {RUNTIME if s.dynamic else start_up}"


def descriptor(s: Setting, start_up: str = START_UP, read_only: bool = False):
    """The ROS descriptor of a setting (rcl_interfaces.msg.ParameterDescriptor). The segment
    node's start-up settings are not read_only: they may change while unconfigured."""
    from rcl_interfaces.msg import (
        FloatingPointRange,
        IntegerRange,
        ParameterDescriptor,
        ParameterType,
    )

    ptype = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
             list: ParameterType.PARAMETER_STRING_ARRAY}[s.kind]
    desc = ParameterDescriptor(name=s.name, type=ptype, description=description(s, start_up),
                               additional_constraints=s.constraints,
                               read_only=read_only and not s.dynamic)
    if s.low is not None and s.kind is float:
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(s.low), to_value=float(s.high), step=0.0)]
    elif s.low is not None:
        desc.integer_range = [IntegerRange(from_value=int(s.low), to_value=int(s.high), step=1)]
    return desc


def declare(node) -> dict[str, Any]:
    """Declare every parameter of the segment node (SETTINGS); see declare_settings."""
    return declare_settings(node, SETTINGS)


def declare_settings(node, settings: tuple[Setting, ...], start_up: str = START_UP,
                     read_only: bool = False) -> dict[str, Any]:
    """Declare `settings` as parameters on an rclpy node; returns the values in effect.

    Every parameter gets a value, so `ros2 param get` and `ros2 param dump` show them all: an
    empty string list has no type in ROS (a YAML `[]` arrives unset), so such parameters are
    declared typed and then set to a typed empty list. Types and ranges that rclpy refuses
    raise here (a start-up failure naming the parameter).
    """
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    def unset(name: str) -> bool:
        try:
            return node.get_parameter(name).type_ == Parameter.Type.NOT_SET
        except ParameterUninitializedException:
            return True

    node.declare_parameters("", [
        (s.name, Parameter.Type.STRING_ARRAY if s.default == [] else s.default,
         descriptor(s, start_up, read_only)) for s in settings])
    empty = [Parameter(s.name, Parameter.Type.STRING_ARRAY, [])
             for s in settings if s.kind is list and unset(s.name)]
    if empty:
        node.set_parameters(empty)
    return {s.name: _plain(node.get_parameter(s.name).value) for s in settings}


def integers_as_doubles(changes: list) -> list:
    """Part of the pre-set-parameters callback: an integer given to a double parameter becomes
    that double. `ros2 param set /ovseg threshold 0` sends an integer, which rclpy would refuse
    with only "Wrong parameter type, expected '3' got '2'", before any callback of ours runs."""
    from rclpy.parameter import Parameter

    return [Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
            if p.name in BY_NAME and BY_NAME[p.name].kind is float
            and p.type_ == Parameter.Type.INTEGER else p for p in changes]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def change_refused(name: str, value: Any, state: str) -> str | None:
    """Why setting parameter `name` to `value` in lifecycle state `state` is refused, or None.

    Checks the setting's own rules; cross-setting rules (a vocabulary, max_prompts below the
    prompts in use) are the core's, applied when the change reaches it.
    """
    s = BY_NAME.get(name)
    if s is None:
        return None  # not ours (e.g. use_sim_time)
    if (why := s.problem(_plain(value))) is not None:
        return why
    if not s.dynamic and state != "unconfigured":
        steps = ("clean up the node (ros2 lifecycle set <node> cleanup)" if state == "inactive"
                 else "deactivate and clean up the node (ros2 lifecycle set <node> deactivate, "
                 "then cleanup)")
        return (f"{name} is a start-up setting and the node is {state}: {steps}, set it, "
                "then configure again")
    return None

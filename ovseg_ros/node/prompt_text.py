"""The `prompts` parameter's pre-set callback: names stored in their normalised form.

(Encoding the text of new names, the slow part of a vocabulary change, runs on the node's
text worker: heavy_work.HeavyWork.)
"""

from __future__ import annotations

from rclpy.parameter import Parameter

from ovseg_ros.core.vocabulary import normalise_name


def normalise_prompt_parameters(changes: list[Parameter]) -> list[Parameter]:
    """Pre-set-parameters callback: a `prompts` value is stored in its normalised form
    (core.vocabulary.normalise_name), the form the vocabulary, LabelMap and LabelInfo use."""
    out = []
    for p in changes:
        if p.name == "prompts" and isinstance(p.value, (list, tuple)) and all(
                isinstance(n, str) for n in p.value):
            p = Parameter("prompts", Parameter.Type.STRING_ARRAY,
                          [normalise_name(n) for n in p.value])
        out.append(p)
    return out

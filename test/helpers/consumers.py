"""Readers that parse ovseg's outputs the way the consumers' own code does, written from their
sources' behaviour (not from ovseg's writers), so a conformance test fails where the consumer
would:

- Hydra (github.com/MIT-SPARK/Hydra): `CsvReader` splits every line at each comma with
  `std::getline` (no quoting; a trailing '\\r' is dropped; an empty line has no last field to
  look at), the first line is the header, a row is resized to the header's length;
  `SemanticColorMap::fromCsv` converts red, green, blue, alpha and id with `std::stoi` (cast to
  uint8 for the colour) and keys its colour -> label map by colour, so a repeated colour loses
  a class. The label-space YAML names the CSV in `semantic_colormap_file`.
- semantic_inference's image recolouring: a row that does not split into exactly 6 fields is
  dropped.
- Nav2's semantic_segmentation_layer (`SegmentationBuffer`): keeps LabelInfo's class map as
  `unordered_map<string, uint8_t>` and reads the label and confidence images as
  `data[v * width + u]`, one byte per pixel, whatever the encoding and step say.
"""

from __future__ import annotations

from typing import Any

INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1
_C_SPACE = " \t\n\v\f\r"


class ConsumerRejects(AssertionError):
    """The consumer would fail (throw, crash, drop a row or misread) on this input."""


def stoi(text: str) -> int:
    """std::stoi in base 10: leading C whitespace, an optional sign, at least one digit (else
    std::invalid_argument), the int range (else std::out_of_range); what follows is ignored."""
    rest = text.lstrip(_C_SPACE)
    sign = ""
    if rest[:1] in ("+", "-"):
        sign, rest = rest[0], rest[1:]
    digits = ""
    for ch in rest:
        if not "0" <= ch <= "9":
            break
        digits += ch
    if not digits:
        raise ConsumerRejects(f"std::stoi: invalid_argument for {text!r}")
    value = int(sign + digits)
    if not INT_MIN <= value <= INT_MAX:
        raise ConsumerRejects(f"std::stoi: out_of_range for {text!r}")
    return value


def getline_split(line: str, sep: str = ",") -> list[str]:
    """The fields `while (getline(stream, word, sep))` yields: a trailing separator gives no
    empty last field, an empty line no field at all."""
    fields = line.split(sep)
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def hydra_colour_map(text: str) -> dict[tuple[int, int, int, int], int]:
    """Hydra's colour -> label map from the CSV text; ConsumerRejects where Hydra would throw
    or crash, where semantic_inference would drop a row (not exactly 6 fields), where the
    uint8 cast would change a colour, and where a colour repeats (Hydra loses a class)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it opens no new one
    header: list[str] | None = None
    colours: dict[tuple[int, int, int, int], int] = {}
    for number, line in enumerate(lines, 1):
        row = getline_split(line)
        if not row:
            raise ConsumerRejects(f"line {number} is empty: Hydra reads row.back() of no field")
        if row[-1].endswith(("\r", "\n")):
            row[-1] = row[-1][:-1]
        if header is None:
            header = row
            missing = {"red", "green", "blue", "id"} - set(header)
            if missing:
                raise ConsumerRejects(f"header misses {sorted(missing)}")
            continue
        if len(row) != 6:
            raise ConsumerRejects(f"line {number} splits into {len(row)} fields, not 6: {row}")
        row = (row + [""] * len(header))[:len(header)]  # Hydra's row.resize(headers.size())
        field = dict(zip(header, row, strict=True))
        label = stoi(field["id"])
        colour = []
        for key in ("red", "green", "blue", "alpha"):
            value = stoi(field[key]) if key in field else 255
            if not 0 <= value <= 255:
                raise ConsumerRejects(f"line {number}: {key}={value} changes in the uint8 cast")
            colour.append(value)
        key = (colour[0], colour[1], colour[2], colour[3])
        if key in colours:
            raise ConsumerRejects(f"line {number}: colour {key} of id {label} is id "
                                  f"{colours[key]}'s too: Hydra keeps one of them")
        colours[key] = label
    if header is None:
        raise ConsumerRejects("no header line")
    return colours


def nav2_class_map(label_info: Any) -> dict[str, int]:
    """LabelInfo's class map as Nav2 keeps it: name -> uint8 id. ConsumerRejects where the
    uint8 cast would change an id or two classes share a name."""
    out: dict[str, int] = {}
    for entry in label_info.class_map:
        if not 0 <= entry.class_id <= 255:
            raise ConsumerRejects(f"class {entry.class_name!r} id {entry.class_id} does not "
                                  "fit Nav2's uint8 class id")
        if entry.class_name in out:
            raise ConsumerRejects(f"class name {entry.class_name!r} appears twice")
        out[entry.class_name] = entry.class_id
    return out


def nav2_pixels(image: Any) -> list[int]:
    """Every pixel as Nav2 reads it: data[v * width + u], one byte. ConsumerRejects unless
    those bytes are the pixels (mono8, rows not padded)."""
    if image.encoding != "mono8":
        raise ConsumerRejects(f"encoding {image.encoding}: Nav2 reads one byte per pixel")
    if image.step != image.width:
        raise ConsumerRejects(f"step {image.step} != width {image.width}: Nav2 ignores step")
    data = bytes(image.data)
    if len(data) < image.width * image.height:
        raise ConsumerRejects("fewer bytes than pixels")
    return [data[v * image.width + u] for v in range(image.height) for u in range(image.width)]

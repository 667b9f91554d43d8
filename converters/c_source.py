"""C/C++ source text for constant arrays: the model flatbuffer and golden vectors.

The output is meant to be read by people as well as compilers: fixed-width rows, a comment
with the element count, `alignas(16)` where TFLM needs it (the flatbuffer is read in place,
and CMSIS-NN/ESP-NN kernels load weights with word-sized accesses).

Example:
    >>> print(c_array("g_demo", b"\\x01\\x02", "unsigned char", align=16))
    alignas(16) const unsigned char g_demo[2] = {
        0x01, 0x02,
    };
"""

from __future__ import annotations

import math
import re

import numpy as np

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# How each C element type is printed, and how many values fit on one row.
_FORMATS = {
    "unsigned char": (lambda v: f"0x{int(v):02x}", 12),
    "int8_t": (lambda v: f"{int(v)}", 16),
    "float": (lambda v: _float_literal(v), 6),
    "int32_t": (lambda v: f"{int(v)}", 8),
}


def _float_literal(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot write non-finite float {value!r} into C source")
    text = repr(value)  # shortest text that reads back as the same double
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def c_identifier(name: str) -> str:
    """`name` made into a valid C identifier (letters, digits, underscores)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "m_" + ident
    return ident


def c_array(name: str, values, ctype: str, *, align: int | None = None) -> str:
    """Definition of a `const` array called `name` holding `values`.

    Args:
        name: C identifier of the array.
        values: bytes, or a numpy array (flattened in C order).
        ctype: "unsigned char", "int8_t", "int32_t" or "float".
        align: If given, the definition starts with `alignas(align)`.

    Returns:
        The definition, ending with a newline.
    """
    if not _IDENTIFIER.match(name):
        raise ValueError(f"'{name}' is not a C identifier")
    if ctype not in _FORMATS:
        raise ValueError(f"ctype must be one of {sorted(_FORMATS)}, got '{ctype}'")
    fmt, per_row = _FORMATS[ctype]
    flat = list(values) if isinstance(values, (bytes, bytearray)) else np.asarray(values).ravel()
    if len(flat) == 0:
        raise ValueError(f"array '{name}' would be empty; C++ forbids zero-length arrays")
    rows = []
    for start in range(0, len(flat), per_row):
        rows.append("    " + ", ".join(fmt(v) for v in flat[start:start + per_row]) + ",")
    prefix = f"alignas({align}) " if align else ""
    return f"{prefix}const {ctype} {name}[{len(flat)}] = {{\n" + "\n".join(rows) + "\n};\n"

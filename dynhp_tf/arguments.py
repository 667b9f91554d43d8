"""Checks of constructor arguments, done at once with a ValueError naming the argument.

Numbers arrive as Python or numpy scalars (`np.float32(4)`, `np.int64(32)` from a config or
a grid search) and are all accepted; NaN and infinity are refused (a NaN target compares
false with everything and would silently never prune), and so are sizes that are not
integers and strings of digits.

Example:
    >>> integer("batch_size", np.int64(32))
    32
    >>> number("target_compression", float("nan"), 1, strict=True)
    ValueError: target_compression: expected a number > 1, got nan
"""
from __future__ import annotations

import math
import numbers


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def number(name: str, value, minimum: float, *, strict: bool = False, meaning: str = "") -> float:
    """`value` as a float: a finite real number >= `minimum` (> when `strict`)."""
    if not (_real(value) and (value > minimum if strict else value >= minimum)):
        raise ValueError(f"{name}: expected a number {'>' if strict else '>='} {minimum:g}"
                         f"{meaning}, got {value!r}")
    return float(value)


def integer(name: str, value, minimum: int = 1) -> int:
    """`value` as an int: an integer (Python or numpy) >= `minimum`."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)

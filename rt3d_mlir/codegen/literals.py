"""Constants as MLIR literals: every number printed into generated IR goes through here.

Python's ``repr`` is not MLIR's float grammar (``1e-05`` lacks the ``.``
that MLIR requires; ``inf`` and ``nan`` are not literals at all), so
kernel text never formats a number itself.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from rt3d_mlir.kernel_packing import bf16_bits, bf16_values

_BIT_PATTERN = {"f16": (">e", np.float16), "f32": (">f", np.float32), "f64": (">d", np.float64)}


def float_literal(value: float, type_: str = "f32") -> str:
    """``value`` rounded to ``type_`` (``f16``, ``f32``, ``f64`` or ``bf16``) as an MLIR float literal.

    Finite values print as the shortest decimal that reads back to the same
    ``type_`` value, always with a ``.``; infinities and NaN print as their
    hexadecimal bit pattern, which MLIR accepts for float types.
    """
    if type_ == "bf16":
        bits = bf16_bits(np.array([value], dtype=np.float32))
        rounded = float(bf16_values(bits)[0])
        return float_literal(rounded, "f32") if math.isfinite(rounded) else f"0x{int(bits[0]):04X}"
    try:
        pack, cast = _BIT_PATTERN[type_]
    except KeyError:
        raise ValueError(f"no float literal for type {type_}") from None
    with np.errstate(over="ignore"):  # too large for type_: infinity
        rounded = cast(value)
    if not math.isfinite(float(rounded)):
        return "0x" + struct.pack(pack, float(rounded)).hex().upper()
    magnitude = abs(float(rounded))
    if magnitude == 0.0 or 1e-4 <= magnitude < 1e16:
        return np.format_float_positional(rounded, unique=True, trim="0")
    return np.format_float_scientific(rounded, unique=True, trim="0")


def int_literal(value: int) -> str:
    """An integer literal (``bool`` and numpy integers included)."""
    return str(int(value))


def literal(value: float, type_: str) -> str:
    """A literal of MLIR scalar type ``type_`` (``f32``, ``f64``, ``i32``, ``index``, ...)."""
    return float_literal(value, type_) if type_.startswith(("f", "bf")) else int_literal(value)

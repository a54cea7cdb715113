"""Every number in generated kernel text goes through one formatter whose output MLIR parses back."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from torch_mlir import ir

from rt3d_mlir.codegen.literals import float_literal, literal
from rt3d_mlir.kernel_packing import bf16_bits, bf16_values

VALUES = [0.0, -0.0, 1.0, 0.1, 1e-05, 1e-3, 2.5e-8, 123456789.0, -3.5e20, 3.4028235e38, 1e-45, 1.17549435e-38,
          float("inf"), float("-inf"), float("nan"), math.pi, 1 / 3]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("type_", ["f16", "f32", "f64"])
def test_float_literals_parse_back_to_the_same_bits(value, type_):
    text = float_literal(value, type_)
    with ir.Context():
        module = ir.Module.parse(f"func.func @f() -> {type_} {{\n  %c = arith.constant {text} : {type_}\n"
                                 f"  return %c : {type_}\n}}")
        attr = ir.FloatAttr(next(iter(module.body.operations[0].regions[0].blocks[0].operations))
                            .attributes["value"])
    fmt, cast = {"f16": (">e", np.float16), "f32": (">f", np.float32), "f64": (">d", np.float64)}[type_]
    if math.isnan(value):
        assert math.isnan(attr.value)
    else:
        with np.errstate(over="ignore"):  # too large for f16: infinity
            want = float(cast(value))
        assert struct.pack(fmt, attr.value) == struct.pack(fmt, want), text


def test_python_repr_is_not_the_format():
    assert repr(1e-05) == "1e-05" and float_literal(1e-05) == "1.0e-05"  # MLIR needs the "."
    assert literal(3, "index") == "3" and literal(True, "i1") == "1"
    with pytest.raises(ValueError, match="no float literal"):
        float_literal(1.0, "f8E4M3")


@pytest.mark.parametrize("value", VALUES)
def test_bf16_literals_parse_back_to_the_rounded_bits(value):
    text = float_literal(value, "bf16")
    with ir.Context():
        module = ir.Module.parse(f"func.func @f() -> bf16 {{\n  %c = arith.constant {text} : bf16\n"
                                 f"  return %c : bf16\n}}")
        attr = ir.FloatAttr(next(iter(module.body.operations[0].regions[0].blocks[0].operations))
                            .attributes["value"])
    want = bf16_values(bf16_bits(np.array([value], dtype=np.float32)))[0]
    if math.isnan(value):
        assert math.isnan(attr.value)
    else:
        assert struct.pack(">f", attr.value) == struct.pack(">f", want), text

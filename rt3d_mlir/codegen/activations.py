"""The activations a convolution computes in its epilogue, as kernel text for every target.

``rt3d.kgs_conv3d`` / ``rt3d.packed_conv3d`` carry an ``activation``
(:data:`rt3d_mlir.dialect.rt3d.ACTIVATIONS`), fused by
``rt3d-recognize-kgs`` from the elementwise ops torch-mlir writes after a
convolution: ``relu``, ``sigmoid`` (``1 / (1 + exp(-x))``) and ``silu``
(``x * sigmoid(x)``: YOLO's and X3D's Conv-BN-SiLU blocks). Each CPU and
GPU kernel applies it to a value (a vector of accumulators, or one sum)
with :func:`activation_text`, before any max pool of its epilogue and
before the result is stored. ``exp`` stays ``math.exp``: the CPU pipeline
expands it as a polynomial (``rt3d-expand-exp``), SPIR-V has its own.
"""

from __future__ import annotations

from rt3d_mlir.codegen.text import KernelText


def activation_text(k: KernelText, activation: str, value: str, type_: str) -> str:
    """``value`` (of MLIR type ``type_``: a float, or a vector of floats) after ``activation``."""
    if activation == "none":
        return value
    if type_.startswith("vector<"):
        lanes, element = type_[len("vector<"):-1].split("x")

        def constant(c: float) -> str:
            return k.vconst(c, int(lanes), element)
    else:

        def constant(c: float) -> str:
            return k.const(c, type_)

    if activation == "relu":
        return k.op(f"arith.maximumf {value}, {constant(0.0)} : {type_}")
    if activation in ("sigmoid", "silu"):
        negated = k.op(f"arith.negf {value} : {type_}")
        power = k.op(f"math.exp {negated} : {type_}")
        denominator = k.op(f"arith.addf {power}, {constant(1.0)} : {type_}")
        if activation == "sigmoid":
            return k.op(f"arith.divf {constant(1.0)}, {denominator} : {type_}")
        return k.op(f"arith.divf {value}, {denominator} : {type_}")
    raise ValueError(f"unknown activation '{activation}'")

"""Math functions as arithmetic, for targets that lack them or lack them fast.

``rt3d-expand-erf``: the SPIR-V conversion has no pattern for ``math.erf``
(GELU's exact form), and upstream's math expansions do not cover it. It is
rewritten with Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7):

    t = 1 / (1 + p |x|),  erf(x) = sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-x^2))

``rt3d-expand-exp``: on the CPU targets ``math.exp`` becomes LLVM's exp
intrinsic, one C library call per lane of a vector (SiLU and sigmoid
kernels spent most of their time there). It is rewritten as
``2^k * p(r)`` with ``x = k ln2 + r``, ``|r| <= ln2 / 2`` and Cephes'
degree-6 polynomial for ``e^r`` (relative error at most 7.2e-8 against
float64 over [-87.3, 88.3], measured), ``2^k`` built
from the exponent bits; x is clamped to [-87.34, 88.37] (the normal range
of f32), so larger inputs give 2.4e38 rather than infinity.

Only ops on ``f32`` or vectors of ``f32`` are rewritten.
"""

from __future__ import annotations

from collections.abc import Callable

from torch_mlir import ir
from torch_mlir.dialects import arith, math

from rt3d_mlir.ir_matchers import ops_named
from rt3d_mlir.passes.framework import Pass, register_pass

P = 0.3275911
A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _is_f32(type_: ir.Type) -> bool:
    if isinstance(type_, ir.VectorType):
        type_ = type_.element_type
    return isinstance(type_, ir.F32Type)


def _constant(type_: ir.Type, value: float) -> ir.Value:
    f32 = ir.F32Type.get()
    if isinstance(type_, ir.VectorType):
        attr = ir.DenseElementsAttr.get_splat(type_, ir.FloatAttr.get(f32, value))
    else:
        attr = ir.FloatAttr.get(f32, value)
    return arith.ConstantOp(type_, attr).result


def _expand_f32(module: ir.Operation, name: str, expand: Callable[[ir.Value], ir.Value]) -> None:
    """Replace every ``name`` op on f32 (or vectors of f32) by ``expand`` of its operand."""
    for op in ops_named(module, name):
        x = op.operands[0]
        if not _is_f32(x.type):
            continue
        with ir.InsertionPoint(op), op.location:
            result = expand(x)
        op.results[0].replace_all_uses_with(result)
        op.erase()


def expand_erf(x: ir.Value) -> ir.Value:
    """``erf(x)`` built at the insertion point (f32 or a vector of f32)."""
    type_ = x.type
    one = _constant(type_, 1.0)
    ax = math.absf(x)
    t = arith.divf(one, arith.addf(one, arith.mulf(_constant(type_, P), ax)))
    poly = _constant(type_, A[-1])
    for a in reversed(A[:-1]):
        poly = arith.addf(_constant(type_, a), arith.mulf(t, poly))
    poly = arith.mulf(t, poly)
    decay = math.exp(arith.negf(arith.mulf(x, x)))
    magnitude = arith.subf(one, arith.mulf(poly, decay))
    return math.copysign(magnitude, x)


@register_pass
class ExpandErf(Pass):
    name = "rt3d-expand-erf"
    summary = "Rewrite f32 math.erf as an arith/math.exp polynomial (for targets without erf)"

    def run(self, module: ir.Operation) -> None:
        _expand_f32(module, "math.erf", expand_erf)


EXP_LIMITS = (-87.3365478515625, 88.37)  # k in [-126, 127]: 2^k stays a normal f32
LN2_HI, LN2_LO = 0.693359375, -2.12194440e-4
EXP_POLY = (  # Cephes expf: e^r ~ 1 + r + r^2 (((((c0 r + c1) r + c2) r + c3) r + c4) r + c5)
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
)


def _i32_type(like: ir.Type) -> ir.Type:
    i32 = ir.IntegerType.get_signless(32)
    return ir.VectorType.get(like.shape, i32) if isinstance(like, ir.VectorType) else i32


def _i32_constant(type_: ir.Type, value: int) -> ir.Value:
    i32 = ir.IntegerType.get_signless(32)
    attr = ir.IntegerAttr.get(i32, value)
    if isinstance(type_, ir.VectorType):
        return arith.ConstantOp(type_, ir.DenseElementsAttr.get_splat(type_, attr)).result
    return arith.ConstantOp(type_, attr).result


def expand_exp(x: ir.Value) -> ir.Value:
    """``exp(x)`` built at the insertion point (f32 or a vector of f32)."""
    type_ = x.type
    low, high = (_constant(type_, limit) for limit in EXP_LIMITS)
    x = arith.minimumf(arith.maximumf(x, low), high)
    log2e, half = _constant(type_, 1.4426950408889634), _constant(type_, 0.5)
    k = math.floor(arith.addf(arith.mulf(x, log2e), half))
    hi, lo = _constant(type_, LN2_HI), _constant(type_, LN2_LO)
    r = arith.subf(arith.subf(x, arith.mulf(k, hi)), arith.mulf(k, lo))
    poly = _constant(type_, EXP_POLY[0])
    for c in EXP_POLY[1:]:
        poly = arith.addf(arith.mulf(poly, r), _constant(type_, c))
    one = _constant(type_, 1.0)
    e_r = arith.addf(arith.addf(arith.mulf(poly, arith.mulf(r, r)), r), one)
    i32 = _i32_type(type_)
    bits = arith.shli(arith.addi(arith.fptosi(i32, k), _i32_constant(i32, 127)), _i32_constant(i32, 23))
    return arith.mulf(e_r, arith.bitcast(type_, bits))


@register_pass
class ExpandExp(Pass):
    name = "rt3d-expand-exp"
    summary = "Rewrite f32 math.exp as a range-reduced polynomial (no C library call per lane)"

    def run(self, module: ir.Operation) -> None:
        _expand_f32(module, "math.exp", expand_exp)


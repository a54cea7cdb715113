"""rt3d-expand-erf: ``math.erf`` on f32 as a polynomial in ``arith`` and ``math.exp``.

The SPIR-V conversion has no pattern for ``math.erf`` (GELU's exact form),
and upstream's math expansions do not cover it. This rewrites it with
Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7 for every x):

    t = 1 / (1 + p |x|),  erf(x) = sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-x^2))

Only ops on ``f32`` or vectors of ``f32`` are rewritten; the CPU targets
do not need the pass (LLVM lowers ``erf`` there).
"""

from __future__ import annotations

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
        for op in ops_named(module, "math.erf"):
            x = op.operands[0]
            if not _is_f32(x.type):
                continue
            with ir.InsertionPoint(op), op.location:
                result = expand_erf(x)
            op.results[0].replace_all_uses_with(result)
            op.erase()

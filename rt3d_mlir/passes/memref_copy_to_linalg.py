"""rt3d-memref-copy-to-linalg: rewrite ``memref.copy`` as ``linalg.copy``.

Upstream lowers a ``memref.copy`` it cannot prove contiguous to a call of
``memrefCopy`` from MLIR's runner-utils library, which artifacts do not
link. ``linalg.copy`` lowers to plain loops instead.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import linalg

from rt3d_mlir.ir_matchers import ops_named
from rt3d_mlir.passes.framework import Pass, register_pass


@register_pass
class MemrefCopyToLinalg(Pass):
    name = "rt3d-memref-copy-to-linalg"
    summary = "Rewrite memref.copy as linalg.copy so no runtime library is needed"

    def run(self, module: ir.Operation) -> None:
        for op in ops_named(module, "memref.copy"):
            source, target = op.operands
            with ir.InsertionPoint(op), op.location:
                linalg.copy(source, outs=[target])
            op.erase()

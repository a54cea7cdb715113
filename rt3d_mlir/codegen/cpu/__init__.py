"""CPU kernels (host x86-64 and AArch64): scf + vector + memref text, one module per op kind.

Every kernel is a function over flat memrefs with a task range (see
:mod:`rt3d_mlir.codegen.cpu.kernel`); the passes in ``rt3d_mlir.passes``
match the ops, call these generators and replace each op by a call.
"""

"""GPU compute kernels (the SPIR-V target), written in the ``gpu`` dialect, one module per op kind.

Each kernel is one ``gpu.module`` holding one ``gpu.func`` specialised to its
layer (see :mod:`rt3d_mlir.codegen.gpu.kernel`); the ``rt3d-gpu-*`` passes in
``rt3d_mlir.passes`` match the ops, call these generators and replace each op
by a dispatch of the kernel (:mod:`rt3d_mlir.passes.gpu_dispatch`).
"""

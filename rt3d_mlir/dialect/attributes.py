"""Names of the discardable attributes the passes set and the backends read, defined once.

These ride on upstream ops (``func.func``, ``memref.global``) or annotate
rt3d ops; the op definitions themselves are in :mod:`rt3d_mlir.dialect.rt3d`.
"""

from __future__ import annotations

# On a generated kernel's dispatch declaration (func.func) and kernel.
KERNEL_ATTR = "rt3d.kernel"  # dispatch -> the kernel function it runs
TASKS_ATTR = "rt3d.parallel_tasks"  # how many independent tasks make one call
FLOPS_ATTR = "rt3d.flops"  # useful FLOPs per call (2 x multiply-adds with kept weights)
DENSE_FLOPS_ATTR = "rt3d.dense_flops"  # FLOPs of the same layer computed densely
# On a CPU dispatch declaration and on a gpu.module: a digest of the kernel's text,
# so that an identical kernel (same shapes, same counts) is emitted once and reused.
SOURCE_ATTR = "rt3d.kernel_source"

# On a GPU dispatch declaration (func.func private, called once with tensors, see
# rt3d_mlir.passes.gpu_dispatch): the gpu.module it runs and how.
GPU_KERNEL_ATTR = "rt3d.gpu_kernel"  # flat symbol of the gpu.module (its gpu.func has the same name)
GROUPS_ATTR = "rt3d.groups"  # array<i64: x, y, z> workgroups
LABEL_ATTR = "rt3d.label"  # the dispatch's kind in profiles ("conv", "pad", ...)
ZERO_INIT_ATTR = "rt3d.zero_init"  # unit: the result buffer starts zeroed (interior written only)
IN_PLACE_ATTR = "rt3d.in_place"  # unit: the result is the last operand's buffer, written in place

# On a memref.global whose data rt3d-externalize-weights moved to the weights blob.
BLOB_OFFSET_ATTR = "rt3d.blob_offset"
BLOB_SIZE_ATTR = "rt3d.blob_size"

# On rt3d.packed_conv3d: weights of the layer had it been dense, and those kept.
DENSE_WEIGHTS_ATTR = "dense_weights"
KEPT_WEIGHTS_ATTR = "kept_weights"
# On an rt3d.packed_conv3d with an i8 input: the zero point its input's bytes carry (q + z; 128:
# unsigned bytes, for x86's u8 x s8 dot products), set by rt3d-quantize-convs, read by the kernels.
INPUT_ZERO_POINT_ATTR = "rt3d.input_zero_point"

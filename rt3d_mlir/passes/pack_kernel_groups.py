"""rt3d-pack-kernel-groups: ``rt3d.kgs_conv3d`` to ``rt3d.packed_conv3d``.

Stores only the kept weights of each kernel group, in the entry-major,
lane-minor layout the vector kernel reads (see :mod:`rt3d_mlir.kernel_packing`),
with compact int32 tables: the input offset of each entry, the first entry
of each filter block, and the output channel of each lane (the filter
permutation chosen when ``reorder-filters`` clusters groups with similar
position sets). Vanilla structured and dense convolutions take the same path.
``dense_weights`` and ``kept_weights`` record the weight counts (for FLOPs
in profiles).

Filters per block (``block-size``): by default the target's f32 lanes
(``vector-width``, itself the target's by default), so a block's filters
fill a vector; but when kernel groups are narrower than a vector and the
convolution has W stride 1, one group per block (``gF`` filters): the
"width" kernels put output columns in the lanes instead, and narrow groups
then cost no union of position sets at all.
Convolutions whose weight or bias is not a constant are left alone (the
reference lowering handles them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir.dialect import (
    PackedConv3dParams,
    build_packed_conv3d,
    kgs_conv3d_operands,
    kgs_conv3d_params,
    load_dialect,
)
from rt3d_mlir.dialect.attributes import DENSE_WEIGHTS_ATTR, KEPT_WEIGHTS_ATTR
from rt3d_mlir.ir_matchers import constant_array, defining_op, erase_dead_producers, ops_named
from rt3d_mlir.kernel_packing import pack_kernel_groups
from rt3d_mlir.passes.builders import array_constant
from rt3d_mlir.passes.framework import (
    Pass,
    PassFailure,
    TargetOptions,
    register_pass,
    require_count,
)
from rt3d_mlir.passes.kernel_calls import vector_lanes
from rt3d_mlir.sparsity import diagonal_groups
from rt3d_mlir.targets import get_target


@dataclass
class PackKernelGroupsOptions(TargetOptions):
    block_size: int = 0
    reorder_filters: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        require_count(self.block_size, "block-size", note=" (0 chooses)")


@register_pass
class PackKernelGroups(Pass):
    name = "rt3d-pack-kernel-groups"
    summary = "Pack the kept weights of rt3d.kgs_conv3d into vector-lane blocks with index tables"
    Options = PackKernelGroupsOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        width = vector_lanes(self.options.target, self.options.vector_width, module.location)
        for op in ops_named(module, "rt3d.kgs_conv3d"):
            self._rewrite(op, width)

    def _block_size(self, params, width: int) -> int:
        if self.options.block_size:
            return self.options.block_size
        group_filters = params.group_shape[0]
        if get_target(self.options.target).gpu:
            # GPU kernels hold a block in vec4 accumulators: whole groups, 4 to 16 filters
            return max(4, -(-min(group_filters, width) // 4) * 4)
        if group_filters < width and params.strides[2] == 1:
            return group_filters
        return width

    def _rewrite(self, op: ir.Operation, width: int) -> None:
        x, w, b = kgs_conv3d_operands(op)
        weight = constant_array(w)
        bias = constant_array(b) if b is not None else None
        if weight is None or (b is not None and bias is None):
            return
        params = kgs_conv3d_params(op)
        x_shape = ir.RankedTensorType(x.type).shape
        padded = [
            size + lo + hi
            for size, lo, hi in zip(x_shape[2:], params.padding_low, params.padding_high, strict=True)
        ]
        try:
            packed = pack_kernel_groups(
                weight.astype(np.float32),
                params.masks,
                params.group_shape,
                bias,
                padded,
                params.dilations,
                self._block_size(params, width),
                reorder=self.options.reorder_filters,
            )
        except ValueError as err:
            raise PassFailure(str(err), op.location) from None
        with ir.InsertionPoint(op), op.location:
            operands = [
                x,
                array_constant(packed.weights),
                array_constant(packed.entry_offsets),
                array_constant(packed.block_starts),
                array_constant(packed.out_channels),
                array_constant(packed.bias),
            ]
            new = build_packed_conv3d(
                op.results[0].type,
                operands,
                PackedConv3dParams(
                    kernel_size=tuple(int(k) for k in weight.shape[2:]),  # type: ignore[arg-type]
                    strides=params.strides,
                    padding_low=params.padding_low,
                    padding_high=params.padding_high,
                    dilations=params.dilations,
                    block_size=packed.block_size,
                    channel_unroll=packed.channel_unroll,
                    activation=params.activation,
                ),
            )
        i64 = ir.IntegerType.get_signless(64)
        # a grouped convolution's dense work is its groups' blocks, not the expanded weight
        dense = int(weight.size) // diagonal_groups(weight)
        new.attributes[DENSE_WEIGHTS_ATTR] = ir.IntegerAttr.get(i64, dense)
        new.attributes[KEPT_WEIGHTS_ATTR] = ir.IntegerAttr.get(i64, int(np.count_nonzero(packed.weights)))
        producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
        op.results[0].replace_all_uses_with(new.results[0])
        op.erase()
        erase_dead_producers(producers)

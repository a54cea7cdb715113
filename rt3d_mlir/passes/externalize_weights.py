"""rt3d-externalize-weights: move large constant tensors out of the IR.

Each non-splat ``arith.constant`` tensor of f32, f16, i32 or i16 (packed
weights, bf16 weight pairs and their index tables) with at least
``min-elements`` elements becomes an external ``memref.global`` declaration (no initial
value) read through ``memref.get_global`` + ``bufferization.to_tensor``.
Its bytes are appended, 64-byte aligned, to ``blob-file``, and the global
records where: ``rt3d.blob_offset`` and ``rt3d.blob_size`` (bytes). The
backend defines the symbols from the blob (``.incbin``), so weight data
never passes through MLIR or LLVM IR text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import bufferization, memref

from rt3d_mlir.dialect.attributes import BLOB_OFFSET_ATTR, BLOB_SIZE_ATTR
from rt3d_mlir.ir_matchers import constant_array, ops_named, top_level_ops
from rt3d_mlir.passes.framework import Pass, PassFailure, register_pass, require, require_count

BLOB_ALIGNMENT = 64


@dataclass
class ExternalizeWeightsOptions:
    blob_file: str = ""
    min_elements: int = 64
    symbol_prefix: str = "rt3d_weight_"

    def __post_init__(self) -> None:
        require_count(self.min_elements, "min-elements")
        require(self.symbol_prefix.replace("_", "a").isalnum(), "symbol-prefix must be letters, digits and _")


def _blob_dtype(element: ir.Type) -> type | None:
    """The numpy type stored in the blob for a tensor element type (None: keep inline)."""
    if isinstance(element, ir.F32Type):
        return np.float32
    if isinstance(element, ir.IntegerType) and element.width == 32:
        return np.int32
    if isinstance(element, ir.IntegerType) and element.width == 16:  # bf16 weight pairs' bits
        return np.int16
    if isinstance(element, ir.F16Type):  # f16 weights
        return np.float16
    return None


@register_pass
class ExternalizeWeights(Pass):
    name = "rt3d-externalize-weights"
    summary = "Replace large constant tensors by external memref.globals backed by a blob file"
    Options = ExternalizeWeightsOptions

    def run(self, module: ir.Operation) -> None:
        candidates = []
        for op in ops_named(module, "arith.constant"):
            if not isinstance(op.results[0].type, ir.RankedTensorType):
                continue
            element = ir.RankedTensorType(op.results[0].type).element_type
            dtype = _blob_dtype(element)
            if dtype is None:
                continue
            array = constant_array(op.results[0])
            if array is None or array.size < self.options.min_elements:
                continue
            attr = op.attributes["value"]
            if attr.is_splat:
                continue
            candidates.append((op, array.astype(dtype)))
        if not candidates:
            return
        if not self.options.blob_file:
            raise PassFailure("needs the blob-file option to write weights to", module.location)

        existing = {
            ir.StringAttr(o.attributes["sym_name"]).value for o in top_level_ops(module, "memref.global")
        }
        body = module.regions[0].blocks[0]
        offset = 0
        with open(self.options.blob_file, "wb") as blob:
            for index, (op, array) in enumerate(candidates):
                symbol = f"{self.options.symbol_prefix}{index}"
                while symbol in existing:
                    symbol += "_"
                data = np.ascontiguousarray(array).tobytes()
                padding = (-offset) % BLOB_ALIGNMENT
                blob.write(b"\0" * padding)
                offset += padding
                tensor_type = ir.RankedTensorType(op.results[0].type)
                memref_type = ir.MemRefType.get(list(tensor_type.shape), tensor_type.element_type)
                with ir.InsertionPoint.at_block_begin(body), op.location:
                    global_op = memref.GlobalOp(
                        sym_name=symbol,
                        type_=memref_type,
                        sym_visibility="public",
                        constant=True,
                        alignment=BLOB_ALIGNMENT,
                    )
                    global_op.operation.attributes[BLOB_OFFSET_ATTR] = ir.IntegerAttr.get(
                        ir.IntegerType.get_signless(64), offset
                    )
                    global_op.operation.attributes[BLOB_SIZE_ATTR] = ir.IntegerAttr.get(
                        ir.IntegerType.get_signless(64), len(data)
                    )
                blob.write(data)
                offset += len(data)
                with ir.InsertionPoint(op), op.location:
                    buffer = memref.GetGlobalOp(memref_type, symbol).result
                    value = bufferization.ToTensorOp(tensor_type, buffer, restrict=True).result
                op.results[0].replace_all_uses_with(value)
                op.erase()

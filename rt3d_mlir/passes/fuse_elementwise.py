"""rt3d-fuse-elementwise: chains of elementwise ``linalg.generic`` ops become one op.

torch-mlir emits one generic per PyTorch operator: a squeeze-excitation
gate then SiLU is three (``x * g``, ``sigmoid(.)``, ``. * .``), a residual
add then ReLU two. Each becomes a kernel that reads and writes a whole
activation, and these are memory-bound. This pass merges a producer into
its consumer when

- both are elementwise generics the CPU kernel takes
  (:func:`~rt3d_mlir.passes.vectorize_elementwise.elementwise_inner`),
- every use of the producer's result is an operand of that consumer read
  through the identity map (so nothing is computed twice: a producer read
  through a broadcast, like the gate's sigmoid, stays apart), and
- the producer does not read its own init.

The fused op reads the consumer's other inputs and the producer's inputs
(their maps unchanged) and computes the producer's body then the
consumer's. Repeated to a fixed point, a chain becomes one kernel that
reads its inputs once and writes one result.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import linalg

from rt3d_mlir.ir_matchers import defining_op, generic_body, ops_named
from rt3d_mlir.passes.framework import Pass, register_pass
from rt3d_mlir.passes.vectorize_elementwise import elementwise_inner


def _maps(op: ir.Operation) -> list[ir.Attribute]:
    return list(ir.ArrayAttr(op.attributes["indexing_maps"]))


def _fusable_producer(consumer: ir.Operation, operand: int) -> ir.Operation | None:
    """The generic producing the consumer's input ``operand`` if it can be merged into it."""
    producer = defining_op(consumer.operands[operand])
    if producer is None or producer.name != "linalg.generic" or elementwise_inner(producer) is None:
        return None
    result = producer.results[0]
    identity = ir.AffineMap.get_identity(len(ir.ArrayAttr(consumer.attributes["iterator_types"])))
    maps = _maps(consumer)
    inputs = len(consumer.operands) - 1
    for use in result.uses:
        if use.owner != consumer or use.operand_number >= inputs:
            return None
        if ir.AffineMapAttr(maps[use.operand_number]).value != identity:
            return None
    out_arg = producer.regions[0].blocks[0].arguments[-1]
    if any(True for _ in out_arg.uses):
        return None
    return producer


def _clone_into(block: ir.Block, ops: list[ir.Operation], mapping: dict[ir.Value, ir.Value]) -> None:
    """Clone ``ops`` to the end of ``block``, their operands renamed by ``mapping`` (which learns
    their results)."""
    for op in ops:
        clone = op.clone(ir.InsertionPoint(block))
        for i, value in enumerate(clone.operands):
            if value in mapping:
                clone.operands[i] = mapping[value]
        for old, new in zip(op.results, clone.results, strict=True):
            mapping[old] = new


def fuse(producer: ir.Operation, consumer: ir.Operation) -> ir.Operation:
    """The generic computing ``consumer`` with ``producer`` merged in (see the module docstring)."""
    inputs = len(consumer.operands) - 1
    fused = [i for i in range(inputs) if consumer.operands[i] == producer.results[0]]
    kept = [i for i in range(inputs) if i not in fused]
    p_inputs = len(producer.operands) - 1
    c_maps, p_maps = _maps(consumer), _maps(producer)
    new_inputs = [consumer.operands[i] for i in kept] + [producer.operands[i] for i in range(p_inputs)]
    maps = [c_maps[i] for i in kept] + p_maps[:p_inputs] + [c_maps[-1]]
    with ir.InsertionPoint(consumer), consumer.location:
        op = linalg.GenericOp(
            [consumer.results[0].type],
            new_inputs,
            [consumer.operands[inputs]],
            ir.ArrayAttr.get(maps),
            consumer.attributes["iterator_types"],
        ).operation
    types = [ir.RankedTensorType(v.type).element_type for v in [*new_inputs, consumer.operands[inputs]]]
    block = op.regions[0].blocks.append(*types)
    args = list(block.arguments)
    p_args = producer.regions[0].blocks[0].arguments
    c_args = consumer.regions[0].blocks[0].arguments
    mapping: dict[ir.Value, ir.Value] = {p_args[i]: args[len(kept) + i] for i in range(p_inputs)}
    p_body = generic_body(producer)
    _clone_into(block, p_body[:-1], mapping)
    produced = p_body[-1].operands[0]
    produced = mapping.get(produced, produced)
    mapping = {c_args[i]: args[n] for n, i in enumerate(kept)}
    mapping.update({c_args[i]: produced for i in fused})
    mapping[c_args[inputs]] = args[-1]
    _clone_into(block, generic_body(consumer), mapping)
    consumer.results[0].replace_all_uses_with(op.results[0])
    consumer.erase()
    producer.erase()
    return op


@register_pass
class FuseElementwise(Pass):
    name = "rt3d-fuse-elementwise"
    summary = "Merge chains of elementwise linalg.generic ops (SE gate + SiLU, add + ReLU) into one"

    def run(self, module: ir.Operation) -> None:
        # One walk: a producer comes before its consumer, so by the time a consumer is visited its
        # producers are final; a fused op is tried again until nothing more merges into it.
        for op in ops_named(module, "linalg.generic"):
            consumer: ir.Operation | None = op
            while consumer is not None and elementwise_inner(consumer) is not None:
                producers = (_fusable_producer(consumer, i) for i in range(len(consumer.operands) - 1))
                producer = next((p for p in producers if p is not None), None)
                consumer = fuse(producer, consumer) if producer is not None else None

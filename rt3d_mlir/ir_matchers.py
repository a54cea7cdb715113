"""Small helpers for reading and matching IR from Python passes."""

from __future__ import annotations

import numpy as np
from torch_mlir import ir

from rt3d_mlir.kernel_packing import INT8_MAX


def ops_named(root: ir.Operation, name: str) -> list[ir.Operation]:
    """All ops with the given name under ``root``, in pre-order."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == name:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def top_level_ops(module: ir.Operation, name: str) -> list[ir.Operation]:
    """The ops named ``name`` directly in ``module``'s body (functions, globals): no walk."""
    return [op for op in module.regions[0].blocks[0].operations if op.operation.name == name]


def defining_op(value: ir.Value) -> ir.Operation | None:
    """The op that produces ``value``, or None for a block argument."""
    owner = value.owner
    if isinstance(owner, ir.Block):
        return None
    return owner.operation if hasattr(owner, "operation") else owner


_PURE_PRODUCERS = (
    "tensor.pad",
    "linalg.broadcast",
    "linalg.fill",
    "linalg.transpose",
    "tensor.empty",
    "arith.constant",
)


def _pure(op: ir.Operation) -> bool:
    """Side-effect free: one of _PURE_PRODUCERS, or a ``linalg.generic`` on tensors."""
    if op.name == "linalg.generic":
        return len(op.results) > 0 and all(isinstance(r.type, ir.RankedTensorType) for r in op.results)
    return op.name in _PURE_PRODUCERS


def erase_dead_producers(ops: list[ir.Operation]) -> None:
    """Erase side-effect-free producers left without uses, transitively."""
    # Each op is pending once: another wrapper of an erased op would read freed memory (the
    # bindings do not invalidate it), so an op listed twice, or reading one value twice, must
    # not be visited after it is erased.
    pending: list[ir.Operation] = []

    def push(op: ir.Operation) -> None:
        if not any(op == other for other in pending):
            pending.append(op)

    for op in ops:
        push(op)
    while pending:
        op = pending.pop()
        if not op.attached or not _pure(op):
            continue
        if any(True for r in op.results for _ in r.uses):
            continue
        producers = [p for p in (defining_op(v) for v in op.operands) if p is not None]
        op.erase()
        for producer in producers:
            push(producer)


def constant_attr(value: ir.Value) -> ir.Attribute | None:
    op = defining_op(value)
    if op is None or op.name != "arith.constant":
        return None
    return op.attributes["value"]


def constant_array(value: ir.Value) -> np.ndarray | None:
    """The contents of an ``arith.constant`` with inline dense elements.

    ``dense_resource`` blobs cannot be read back through the Python bindings,
    so they give None (the frontend imports weights as inline elements).
    """
    attr = constant_attr(value)
    if attr is None or not isinstance(attr, ir.DenseElementsAttr):
        return None
    if isinstance(attr, ir.DenseFPElementsAttr | ir.DenseIntElementsAttr):
        if attr.is_splat:
            splat = attr.get_splat_value()
            shaped = ir.ShapedType(attr.type)
            scalar = splat.value if hasattr(splat, "value") else splat
            dtype: type = np.float32
            if isinstance(attr, ir.DenseIntElementsAttr):
                dtype = {1: np.bool_, 8: np.int8, 16: np.int16, 32: np.int32}.get(
                    ir.IntegerType(shaped.element_type).width, np.int64
                )
            return np.full(tuple(shaped.shape), scalar, dtype=dtype)
        return np.array(attr)
    return None


def is_float_constant(value: ir.Value, number: float) -> bool:
    attr = constant_attr(value)
    return isinstance(attr, ir.FloatAttr) and float(attr.value) == number


def single_use(value: ir.Value) -> ir.Operation | None:
    """The only user of ``value``, or None if it has zero or several uses."""
    users = [use.owner for use in value.uses]
    if len(users) != 1:
        return None
    user = users[0]
    return user.operation if hasattr(user, "operation") else user


def generic_body(op: ir.Operation) -> list[ir.Operation]:
    return [o.operation if hasattr(o, "operation") else o for o in op.regions[0].blocks[0].operations]


def is_identity_elementwise(op: ir.Operation, num_inputs: int) -> bool:
    """A ``linalg.generic`` of ``num_inputs`` inputs and one result, identity maps, all parallel."""
    if op.name != "linalg.generic" or len(op.results) != 1:
        return False
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    if len(maps) != num_inputs + 1 or any(
        not m.is_permutation or list(m.results) != list(ir.AffineMap.get_identity(m.n_dims).results)
        for m in maps
    ):
        return False
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    return all("parallel" in it for it in iterators)


def relu_input(op: ir.Operation) -> ir.Value | None:
    """If ``op`` is an elementwise ReLU ``linalg.generic``, the value it rectifies.

    Recognizes the two forms torch-mlir emits: ``select(cmpf ugt x, 0; x; 0)``
    and ``maximumf(x, 0)``.
    """
    if not is_identity_elementwise(op, 1):
        return None
    body = generic_body(op)
    block = op.regions[0].blocks[0]
    arg = block.arguments[0]
    yielded = body[-1].operands[0]
    if len(body) == 2 and body[0].name == "arith.maximumf":
        a, b = body[0].operands
        if (a == arg and is_float_constant(b, 0.0)) or (b == arg and is_float_constant(a, 0.0)):
            return op.operands[0] if yielded == body[0].results[0] else None
    if len(body) == 3 and body[0].name == "arith.cmpf" and body[1].name == "arith.select":
        cmp, sel = body[0], body[1]
        predicate = int(ir.IntegerAttr(cmp.attributes["predicate"]).value)
        # arith.cmpf predicates: 2 = ogt, 9 = ugt.
        lhs, rhs = cmp.operands
        cond, true_value, false_value = sel.operands
        if (
            predicate in (2, 9)
            and lhs == arg
            and is_float_constant(rhs, 0.0)
            and cond == cmp.results[0]
            and true_value == arg
            and is_float_constant(false_value, 0.0)
            and yielded == sel.results[0]
        ):
            return op.operands[0]
    return None


def sigmoid_input(op: ir.Operation) -> ir.Value | None:
    """If ``op`` is an elementwise sigmoid ``linalg.generic`` (torch-mlir's ``1 / (1 + exp(-x))``),
    the value it reads."""
    if not is_identity_elementwise(op, 1):
        return None
    body = generic_body(op)
    if [o.name for o in body] != ["arith.negf", "math.exp", "arith.addf", "arith.divf", "linalg.yield"]:
        return None
    negf, exp, addf, divf, yielded = body
    arg = op.regions[0].blocks[0].arguments[0]
    added = [v for v in addf.operands if v != exp.results[0]]
    if (
        negf.operands[0] != arg
        or exp.operands[0] != negf.results[0]
        or len(added) != 1
        or not is_float_constant(added[0], 1.0)
        or not is_float_constant(divf.operands[0], 1.0)
        or divf.operands[1] != addf.results[0]
        or yielded.operands[0] != divf.results[0]
    ):
        return None
    return op.operands[0]


def _product_operands(op: ir.Operation) -> tuple[ir.Value, ir.Value] | None:
    """The two inputs of an elementwise product ``linalg.generic`` (``mulf`` of its two inputs)."""
    if not is_identity_elementwise(op, 2):
        return None
    body = generic_body(op)
    block = op.regions[0].blocks[0]
    if [o.name for o in body] != ["arith.mulf", "linalg.yield"] or body[1].operands[0] != body[0].results[0]:
        return None
    a, b = body[0].operands
    first, second = block.arguments[0], block.arguments[1]
    if not ((a == first and b == second) or (a == second and b == first)):
        return None
    return op.operands[0], op.operands[1]


def _reads(read: ir.Value | None, value: ir.Value) -> bool:
    return read is not None and read == value


def _same_pair(pair: tuple[ir.Value, ir.Value], other: tuple[ir.Value, ir.Value]) -> bool:
    return (pair[0] == other[0] and pair[1] == other[1]) or (pair[0] == other[1] and pair[1] == other[0])


def fused_activation(value: ir.Value) -> tuple[str, list[ir.Operation]]:
    """The activation (:data:`rt3d_mlir.dialect.rt3d.ACTIVATIONS`) that elementwise ops read only by
    each other apply to ``value``, and those ops, the one giving the activated value last:
    ``relu`` and ``sigmoid`` (one generic), ``silu`` (a sigmoid generic and the product of
    ``value`` and it); ``("none", [])`` if none."""
    users = []
    uses = 0
    for use in value.uses:
        uses += 1
        owner = use.owner.operation if hasattr(use.owner, "operation") else use.owner
        if owner not in users:
            users.append(owner)
    if uses == 1:
        (user,) = users
        if _reads(relu_input(user), value):
            return "relu", [user]
        if _reads(sigmoid_input(user), value):
            return "sigmoid", [user]
    if len(users) == 2 and uses == 2:
        for gate, product in (users, users[::-1]):
            operands = _product_operands(product)
            if (
                _reads(sigmoid_input(gate), value)
                and (user := single_use(gate.results[0])) is not None
                and user == product
                and operands is not None
                and _same_pair(operands, (value, gate.results[0]))
            ):
                return "silu", [gate, product]
    return "none", []


def static_size(shaped: ir.Type | ir.Value) -> int:
    """Elements of a static shaped type (or of a value's type)."""
    type_ = shaped.type if isinstance(shaped, ir.Value) else shaped
    size = 1
    for dim in ir.ShapedType(type_).shape:
        size *= dim
    return size


def int_attr(op: ir.Operation, name: str) -> int:
    """An integer attribute of ``op``, 0 when absent."""
    return int(ir.IntegerAttr(op.attributes[name]).value) if name in op.attributes else 0


# The int8 scheme as the importer writes it (frontend.preparation.quantize_graph): a quantized layer
# reads clamp(round(x / s), -INT8_MAX, INT8_MAX) * s, four one-input elementwise generics.
def _elementwise_of(value: ir.Value) -> tuple[ir.Operation, list[ir.Operation]] | None:
    """The one-input elementwise generic producing ``value`` and its body (without the yield)."""
    op = defining_op(value)
    if op is None or not is_identity_elementwise(op, 1):
        return None
    return op, generic_body(op)[:-1]


def _scalar(value: ir.Value) -> float | None:
    """A float constant, possibly narrowed from f64 (``arith.truncf``), as a Python float."""
    op = defining_op(value)
    if op is not None and op.name == "arith.truncf":
        value = op.operands[0]
    attr = constant_attr(value)
    return float(attr.value) if isinstance(attr, ir.FloatAttr) else None


def _scaled_by(value: ir.Value, name: str) -> tuple[ir.Value, float] | None:
    """(x, s) if ``value`` is an elementwise ``x <name> s`` (``arith.mulf`` / ``arith.divf``)."""
    found = _elementwise_of(value)
    if found is None:
        return None
    op, body = found
    arg = op.regions[0].blocks[0].arguments[0]
    last = body[-1] if body else None
    if last is None or last.name != name or last.operands[0] != arg:
        return None
    scale = _scalar(last.operands[1])
    return (op.operands[0], scale) if scale is not None else None


def _rounded(value: ir.Value) -> ir.Value | None:
    found = _elementwise_of(value)
    if found is None or [o.name for o in found[1]] != ["math.roundeven"]:
        return None
    return found[0].operands[0]


def _clamped(value: ir.Value) -> ir.Value | None:
    """x if ``value`` is an elementwise clamp of x to [-127, 127] (torch-mlir's compare-and-select
    form, or minimum / maximum)."""
    found = _elementwise_of(value)
    if found is None:
        return None
    op, body = found
    names = {o.name for o in body}
    bounds = {_scalar(v) for o in body for v in o.operands} - {None}
    if bounds != {-INT8_MAX, INT8_MAX} or not names <= {
        "arith.cmpf", "arith.select", "arith.minimumf", "arith.maximumf"
    }:
        return None
    return op.operands[0]


def fake_quantized_input(value: ir.Value) -> tuple[ir.Value, float] | None:
    """(x, s) if ``value`` is ``clamp(round(x / s), -127, 127) * s`` as the importer writes it."""
    scaled = _scaled_by(value, "arith.mulf")
    if scaled is None:
        return None
    clamped, scale = scaled
    rounded = _clamped(clamped)
    divided = _rounded(rounded) if rounded is not None else None
    source = _scaled_by(divided, "arith.divf") if divided is not None else None
    if source is None or source[1] != scale or not scale > 0:
        return None
    return source[0], scale

"""Make a model import-ready: bake in pruning masks (module level); on the exported graph, make
grouped convolutions ordinary and fold batch norms (whatever the file format), and for an int8
build apply the int8 scheme to its convolutions and linear layers (:func:`quantize_graph`)."""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from rt3d_mlir.errors import UnsupportedModelError, describe_stack_trace
from rt3d_mlir.quantization import INT8_MAX, fake_quantize_weight


def bake_pruning(model: nn.Module) -> nn.Module:
    """Turn ``torch.nn.utils.prune`` reparametrizations (``weight_orig`` *
    ``weight_mask``) and ``torch.nn.utils.parametrize`` parametrizations
    (including ``torch.ao.pruning``'s masks) into plain weights, in place."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)
        if parametrize.is_parametrized(module):
            _unparametrize(module)
    return model


def _unparametrize(module: nn.Module) -> None:
    """Replace each parametrized tensor by its current value.

    ``parametrize.remove_parametrizations`` deletes properties from the
    module's generated class, which a ``deepcopy`` shares with the original
    model; restoring the original class here leaves the original untouched.
    """
    values = {}
    for name, parametrization in module.parametrizations.items():
        original = parametrization.original
        values[name] = (getattr(module, name).detach().clone(), isinstance(original, nn.Parameter))
    module.__class__ = module.__class__.__bases__[0]
    del module._modules["parametrizations"]
    for name, (value, is_parameter) in values.items():
        if is_parameter:
            module.register_parameter(name, nn.Parameter(value))
        else:
            module.register_buffer(name, value)


_CONVOLUTIONS = {
    # op: index of the bias argument
    torch.ops.aten.conv1d.default: 2,
    torch.ops.aten.conv2d.default: 2,
    torch.ops.aten.conv3d.default: 2,
    torch.ops.aten.convolution.default: 2,
}
_BATCH_NORMS = {
    # op: (weight, bias, mean, var, eps) argument indices, and the "training" flag's index or None
    torch.ops.aten.batch_norm.default: ((1, 2, 3, 4, 7), 5),
    torch.ops.aten._native_batch_norm_legit_no_training.default: ((1, 2, 3, 4, 6), None),
}


class _Tensors:
    """The tensor behind a graph argument of an ExportedProgram: a lifted parameter, buffer or
    constant (a placeholder named in the graph signature), or a tensor literal put there by a
    rewrite below."""

    def __init__(self, program: torch.export.ExportedProgram) -> None:
        signature = program.graph_signature
        self.values: dict[str, torch.Tensor] = {}
        for mapping, source in (
            (signature.inputs_to_parameters, program.state_dict),
            (signature.inputs_to_buffers, program.state_dict),
            (signature.inputs_to_lifted_tensor_constants, program.constants),
        ):
            for placeholder, name in mapping.items():
                value = source.get(name)
                if isinstance(value, torch.Tensor):
                    self.values[placeholder] = value.detach()

    def __call__(self, arg: object) -> torch.Tensor | None:
        if isinstance(arg, torch.Tensor):
            return arg
        if isinstance(arg, torch.fx.Node) and arg.op == "placeholder":
            return self.values.get(arg.name)
        return None


def _single_result(node: torch.fx.Node) -> torch.fx.Node | None:
    """The node carrying a batch norm's output (the ``getitem 0`` of a tuple-returning op)."""
    if node.target in (torch.ops.aten.batch_norm.default,):
        return node
    users = list(node.users)
    if len(users) == 1 and users[0].target is operator.getitem and users[0].args[1] == 0:
        return users[0]
    return None


_GROUPS_INDEX = {
    # op: index of the ``groups`` argument
    torch.ops.aten.conv1d.default: 6,
    torch.ops.aten.conv2d.default: 6,
    torch.ops.aten.conv3d.default: 6,
    torch.ops.aten.convolution.default: 8,
}


# Matrix products and the graph arguments they multiply.
_PRODUCTS = {
    torch.ops.aten.mm.default: (0, 1),
    torch.ops.aten.bmm.default: (0, 1),
    torch.ops.aten.addmm.default: (1, 2),
    torch.ops.aten.baddbmm.default: (1, 2),
}


def refuse_attention(program: torch.export.ExportedProgram) -> None:
    """UnsupportedModelError for a product of two activations (attention's ``q @ k^T`` and
    ``softmax @ v``), naming the operator and where in the model it is.

    The targets have kernels for products with constant weights (fully
    connected layers, 1x1x1 convolutions), not for attention: transformers
    (Swin3D, MViT) are refused here, in one line, instead of being lowered
    to loop nests that take tens of minutes to compile and are slow to run.
    """
    inputs = set(program.graph_signature.user_inputs)
    activations: set[torch.fx.Node] = set()
    for node in program.graph.nodes:
        if node.op == "placeholder":
            if node.name in inputs:
                activations.add(node)
            continue
        if node.op != "call_function" or not any(a in activations for a in node.all_input_nodes):
            continue
        activations.add(node)
        operands = _PRODUCTS.get(node.target, ())
        if operands and all(node.args[i] in activations for i in operands):
            raise UnsupportedModelError(
                f"unsupported operator 'aten.{node.target.__name__.split('.')[0]}' at "
                f"{describe_stack_trace(node.meta.get('stack_trace'))}: a product of two activations "
                "(attention); the targets multiply activations by constant weights only"
            )


def prepare_graph(
    program: torch.export.ExportedProgram, int8_scales: Mapping[str, float] | None = None
) -> bool:
    """Make an exported program's graph ready for the compiler, in place, whatever its file format.

    Grouped and depthwise convolutions become ordinary ones over a
    block-diagonal weight (:func:`expand_grouped_convolutions`), batch norms
    fold into the convolutions before them (:func:`fold_batch_norms`) and
    the others become one per-channel multiply-add
    (:func:`affine_batch_norms`), adaptive average pools become pools or
    matrix products (:func:`adaptive_average_pools`), a model of 2D
    activations is computed as a 3D one of depth 1 (:func:`lift_2d_to_3d`), and
    nearest upsamplings by whole factors become broadcasts
    (:func:`nearest_upsamplings`; after the lift, which leaves them in 2D between
    a squeeze and an unsqueeze, so that the ops after them read lifted activations).
    The program must be decomposed already, with batch norms kept whole
    (``_native_batch_norm_legit_no_training``).
    New weights are written into the graph as tensor literals (what
    torch-mlir's frozen import makes of every parameter anyway), so the
    program is not traced again. Whether anything changed.
    """
    tensors = _Tensors(program)
    changed = expand_grouped_convolutions(program.graph, tensors)
    changed = fold_batch_norms(program.graph, tensors) or changed
    changed = affine_batch_norms(program.graph, tensors) or changed
    changed = adaptive_average_pools(program.graph) or changed
    if int8_scales is not None:
        changed = quantize_graph(program.graph, tensors, int8_scales) or changed
    changed = lift_2d_to_3d(program) or changed
    changed = nearest_upsamplings(program.graph) or changed
    if changed:
        program.graph.eliminate_dead_code()
    return changed


def expand_grouped_convolutions(graph: torch.fx.Graph, tensors: _Tensors) -> bool:
    """Rewrite every grouped convolution (``groups`` > 1, depthwise included) as an ordinary one.

    Torch-mlir lowers a depthwise convolution to nothing at all and other
    grouped ones to a generic loop nest; as one convolution over a weight
    that is zero outside the groups' diagonal blocks, each takes the sparse
    path of every other convolution: its zeros are exact, so only the
    groups' weights are packed and computed (KGS within a group's filters
    stays KGS). Whether anything changed.
    """
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _GROUPS_INDEX or node.kwargs:
            continue
        index = _GROUPS_INDEX[node.target]
        groups = int(node.args[index]) if len(node.args) > index else 1
        if groups == 1:
            continue
        if node.target is torch.ops.aten.convolution.default and node.args[6]:
            continue  # transposed
        weight = tensors(node.args[1])
        if weight is None:
            continue
        filters, per_group = weight.shape[0], weight.shape[1]
        per_group_filters = filters // groups
        expanded = weight.new_zeros((filters, per_group * groups, *weight.shape[2:]))
        for g in range(groups):
            rows = slice(g * per_group_filters, (g + 1) * per_group_filters)
            expanded[rows, g * per_group : (g + 1) * per_group] = weight[rows]
        args = list(node.args)
        args[1], args[index] = expanded, 1
        node.args = tuple(args)
        changed = True
    return changed


def fold_batch_norms(graph: torch.fx.Graph, tensors: _Tensors) -> bool:
    """Fold every inference-mode batch norm that directly follows a convolution into it.

    For each ``aten.conv*`` whose only user is an ``aten.batch_norm`` in
    inference mode (or ``_native_batch_norm_legit_no_training``) with
    constant statistics, the filters are scaled and the bias shifted, on the
    exported graph, so it applies whatever the model's file format and
    module classes (any ``Conv3d`` subclass, or a functional convolution).
    A filter is scaled by one factor, so exact zeros stay zero. Whether
    anything changed.
    """
    folded = False
    for bn in list(graph.nodes):
        if bn.op != "call_function" or bn.target not in _BATCH_NORMS:
            continue
        (w_i, b_i, m_i, v_i, eps_i), training_i = _BATCH_NORMS[bn.target]
        args = list(bn.args) + [None] * (9 - len(bn.args))
        conv = args[0]
        if (
            not isinstance(conv, torch.fx.Node)
            or conv.op != "call_function"
            or conv.target not in _CONVOLUTIONS
            or len(conv.users) != 1
            or (training_i is not None and args[training_i])
            or bn.kwargs
        ):
            continue
        result = _single_result(bn)
        weight, mean, var = tensors(conv.args[1]), tensors(args[m_i]), tensors(args[v_i])
        if result is None or weight is None or mean is None or var is None:
            continue
        gamma = tensors(args[w_i]) if args[w_i] is not None else torch.ones_like(mean)
        beta = tensors(args[b_i]) if args[b_i] is not None else torch.zeros_like(mean)
        conv_args = list(conv.args) + [None] * max(0, 3 - len(conv.args))
        bias = tensors(conv_args[2]) if conv_args[2] is not None else torch.zeros_like(mean)
        if gamma is None or beta is None or bias is None or weight.shape[0] != mean.shape[0]:
            continue
        with torch.no_grad():
            scale = gamma.double() / torch.sqrt(var.double() + float(args[eps_i]))
            conv_args[1] = (weight.double() * scale.reshape(-1, *[1] * (weight.dim() - 1))).to(weight.dtype)
            conv_args[2] = ((bias.double() - mean.double()) * scale + beta.double()).to(weight.dtype)
        conv.args = tuple(conv_args)
        result.replace_all_uses_with(conv)
        for node in [result, bn] if result is not bn else [bn]:
            if not node.users:
                graph.erase_node(node)
        folded = True
    return folded


def affine_batch_norms(graph: torch.fx.Graph, tensors: _Tensors) -> bool:
    """Turn every inference-mode batch norm left into ``x * scale + shift`` with per-channel constants.

    (Those after a convolution were folded into it.) Two elementwise ops the
    backends fuse and vectorize, instead of the five of a decomposed batch
    norm. Whether anything changed.
    """
    changed = False
    for bn in list(graph.nodes):
        if bn.op != "call_function" or bn.target not in _BATCH_NORMS or bn.kwargs:
            continue
        (w_i, b_i, m_i, v_i, eps_i), training_i = _BATCH_NORMS[bn.target]
        args = list(bn.args) + [None] * (9 - len(bn.args))
        result = _single_result(bn)
        mean, var = tensors(args[m_i]), tensors(args[v_i])
        if result is None or mean is None or var is None or (training_i is not None and args[training_i]):
            continue
        gamma = tensors(args[w_i]) if args[w_i] is not None else torch.ones_like(mean)
        beta = tensors(args[b_i]) if args[b_i] is not None else torch.zeros_like(mean)
        if gamma is None or beta is None or "val" not in result.meta:
            continue
        value = result.meta["val"]
        view = (1, -1, *[1] * (value.dim() - 2))
        with torch.no_grad():
            scale = gamma.double() / torch.sqrt(var.double() + float(args[eps_i]))
            shift = (beta.double() - mean.double() * scale).to(value.dtype).reshape(view)
            scale = scale.to(value.dtype).reshape(view)
        with graph.inserting_before(result):
            scaled = graph.call_function(torch.ops.aten.mul.Tensor, (args[0], scale))
            shifted = graph.call_function(torch.ops.aten.add.Tensor, (scaled, shift))
        scaled.meta["val"] = shifted.meta["val"] = value
        result.replace_all_uses_with(shifted)
        for node in [result, bn] if result is not bn else [bn]:
            if not node.users:
                graph.erase_node(node)
        changed = True
    return changed


_ADAPTIVE_AVERAGE_POOLS = {
    torch.ops.aten._adaptive_avg_pool3d.default: torch.ops.aten.avg_pool3d.default,
    torch.ops.aten._adaptive_avg_pool2d.default: torch.ops.aten.avg_pool2d.default,
}
_MAX_POOL_MATRIX = 1 << 24  # elements of the averaging matrix (64 MiB of f32)


def _adaptive_windows(size: int, out: int) -> torch.Tensor:
    """(size, out): column i averages input positions floor(i*size/out) .. ceil((i+1)*size/out)-1."""
    matrix = torch.zeros(size, out, dtype=torch.float64)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[start:end, i] = 1.0 / (end - start)
    return matrix


def adaptive_average_pools(graph: torch.fx.Graph) -> bool:
    """Rewrite adaptive average pools that are not global: with windows of equal sizes (the output
    size divides the input size) as an ordinary average pool (kernel = stride = input / output),
    with windows of unequal sizes as ``(N*C, D*H*W) @ P`` with the constant averaging matrix ``P``.

    Torch-mlir lowers both to a loop nest computing the sums and the window
    sizes together, which no kernel generator takes; pools and matrix
    products with constant weights are what every target has. Global pools
    (output 1x1x1, lowered as a mean) stay. Whether anything changed.
    """
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in _ADAPTIVE_AVERAGE_POOLS or node.kwargs:
            continue
        source, out_size = node.args[0], [int(s) for s in node.args[1]]
        value = node.meta.get("val")
        x_value = source.meta.get("val") if isinstance(source, torch.fx.Node) else None
        if value is None or x_value is None or x_value.dim() != 2 + len(out_size):
            continue
        sizes = [int(s) for s in x_value.shape[2:]]
        if all(o == 1 for o in out_size):
            continue
        if all(s % o == 0 for s, o in zip(sizes, out_size, strict=True)):
            window = [s // o for s, o in zip(sizes, out_size, strict=True)]
            pool = _ADAPTIVE_AVERAGE_POOLS[node.target]
            with graph.inserting_before(node):
                pooled = graph.call_function(pool, (source, window, window, [0] * len(window)))
        else:
            pooled = _pool_as_product(graph, node, source, x_value, sizes, out_size)
            if pooled is None:
                continue
        pooled.meta["val"] = value
        node.replace_all_uses_with(pooled)
        graph.erase_node(node)
        changed = True
    return changed


# Nearest upsamplings, by spatial dimensions: the ops torch-mlir lowers (2D, in a gather of its own)
# or that the decomposition keeps whole for nearest_upsamplings (3D, which torch-mlir does not lower).
NEAREST_UPSAMPLINGS = {
    torch.ops.aten.upsample_nearest1d.vec: 1, torch.ops.aten.upsample_nearest1d.default: 1,
    torch.ops.aten.upsample_nearest2d.vec: 2, torch.ops.aten.upsample_nearest2d.default: 2,
    torch.ops.aten.upsample_nearest3d.vec: 3, torch.ops.aten.upsample_nearest3d.default: 3,
}


def _whole_factors(node: torch.fx.Node, spatial: int) -> list[int] | None:
    """The whole factor of each spatial dimension of a nearest upsampling, None if one is not whole
    (PyTorch reads output ``i`` at ``floor(i / scale)``: a whole scale, or ``in / out`` where no
    scale is given)."""
    shape = list(node.args[0].meta["val"].shape[-spatial:])
    out = list(node.meta["val"].shape[-spatial:])
    if node.target._overloadname == "vec":
        scales = node.args[2] if len(node.args) > 2 and node.args[2] is not None else [None] * spatial
    else:
        scales = list(node.args[2:2 + spatial]) + [None] * (spatial - len(node.args[2:]))
    factors = []
    for size, result, scale in zip(shape, out, scales, strict=True):
        if result % size or (scale is not None and float(scale) != result // size):
            return None
        factors.append(result // size)
    return factors


def nearest_upsamplings(graph: torch.fx.Graph) -> bool:
    """Nearest upsamplings by whole factors as broadcasts, in place: each input element is copied to
    its ``f_d x f_h x f_w`` block of outputs by a ``view`` giving every spatial dimension a unit
    dimension after it, an ``expand`` of those to the factors and a ``view`` merging each pair; which
    torch-mlir lowers to one broadcasting ``linalg.generic`` (the kernel of
    ``rt3d-vectorize-broadcast``) and reshapes, for any number of spatial dimensions (torch-mlir
    lowers a 2D nearest upsampling to a scalar gather, and not a 3D one). A 3D one by fractional
    factors is refused in one line. Whether anything changed."""
    aten = torch.ops.aten
    changed = False
    for node in list(graph.nodes):
        spatial = NEAREST_UPSAMPLINGS.get(node.target) if node.op == "call_function" else None
        if spatial is None:
            continue
        factors = _whole_factors(node, spatial)
        if factors is None:
            if spatial == 3:
                raise UnsupportedModelError(
                    f"{describe_stack_trace(node.meta.get('stack_trace'))}: a nearest 3D upsampling by "
                    "fractional factors is not supported (whole factors are)"
                )
            continue
        x = node.args[0]
        value = x.meta["val"]
        lead = list(value.shape[: value.dim() - spatial])
        sizes = list(value.shape[value.dim() - spatial :])
        units = lead + [d for size in sizes for d in (size, 1)]
        blocks = lead + [d for size, f in zip(sizes, factors, strict=True) for d in (size, f)]
        result = lead + [size * f for size, f in zip(sizes, factors, strict=True)]
        with graph.inserting_before(node):
            unit = graph.call_function(aten.view.default, (x, units))
            expanded = graph.call_function(aten.expand.default, (unit, blocks))
            copied = graph.call_function(aten.clone.default, (expanded,),
                                         {"memory_format": torch.contiguous_format})
            merged = graph.call_function(aten.view.default, (copied, result))
        fake_mode = value.fake_mode
        with fake_mode:
            unit.meta["val"] = value.view(units)
            expanded.meta["val"] = unit.meta["val"].expand(blocks)
            copied.meta["val"] = expanded.meta["val"].clone(memory_format=torch.contiguous_format)
            merged.meta["val"] = copied.meta["val"].view(result)
        for created in (unit, expanded, copied, merged):
            created.meta["nn_module_stack"] = node.meta.get("nn_module_stack", {})
            created.meta["stack_trace"] = node.meta.get("stack_trace")
        node.replace_all_uses_with(merged)
        graph.erase_node(node)
        changed = True
    return changed


def _pool_as_product(
    graph: torch.fx.Graph,
    node: torch.fx.Node,
    source: torch.fx.Node,
    x_value: torch.Tensor,
    sizes: list[int],
    out_size: list[int],
) -> torch.fx.Node | None:
    """``view(mm(view(x), P), out)`` before ``node``, or None if ``P`` would be too large."""
    inner, outer = math.prod(sizes), math.prod(out_size)
    if inner * outer > _MAX_POOL_MATRIX:
        return None
    matrix = _adaptive_windows(sizes[0], out_size[0])
    for size, out in zip(sizes[1:], out_size[1:], strict=True):
        matrix = torch.kron(matrix, _adaptive_windows(size, out))
    matrix = matrix.to(x_value.dtype)
    rows = int(x_value.shape[0]) * int(x_value.shape[1])
    shape = list(node.meta["val"].shape)
    with graph.inserting_before(node):
        flat = graph.call_function(torch.ops.aten.view.default, (source, [rows, inner]))
        product = graph.call_function(torch.ops.aten.mm.default, (flat, matrix))
        pooled = graph.call_function(torch.ops.aten.view.default, (product, shape))
    with x_value.fake_mode:
        flat.meta["val"] = torch.empty(rows, inner, dtype=x_value.dtype)
        product.meta["val"] = torch.empty(rows, outer, dtype=x_value.dtype)
    return pooled


def _copy_module(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also copes with the computed (non-leaf) ``weight``
    tensors that ``torch.nn.utils.prune`` leaves on modules."""
    memo: dict[int, object] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def prepare_for_import(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with pruning masks baked in (batch norms fold after export)."""
    prepared = _copy_module(model).eval()
    bake_pruning(prepared)
    return prepared


def module_name(node: torch.fx.Node) -> str | None:
    """The name of the innermost module that called ``node`` (torch.export's ``nn_module_stack``)."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path if isinstance(path, str) else None


def _fake_quantized(graph: torch.fx.Graph, x: torch.fx.Node, scale: float, before: torch.fx.Node):
    """``clamp(round(x / scale), -127, 127) * scale`` inserted before ``before``: an int8 grid
    quantization the compiler recognizes (``rt3d-quantize-convs``) or computes as it stands."""
    aten = torch.ops.aten
    value = x.meta.get("val")
    with graph.inserting_before(before):
        divided = graph.call_function(aten.div.Scalar, (x, scale))
        rounded = graph.call_function(aten.round.default, (divided,))
        clamped = graph.call_function(aten.clamp.default, (rounded, -float(INT8_MAX), float(INT8_MAX)))
        result = graph.call_function(aten.mul.Scalar, (clamped, scale))
    for node in (divided, rounded, clamped, result):
        node.meta["val"] = value
        node.meta["nn_module_stack"] = before.meta.get("nn_module_stack", {})
    return result


def _linear_weight(arg: object) -> torch.fx.Node | None:
    """The transpose of a 2-D weight a decomposed ``Linear`` multiplies by."""
    if (
        isinstance(arg, torch.fx.Node) and arg.op == "call_function"
        and arg.target in (torch.ops.aten.t.default, torch.ops.aten.permute.default)
        and len(arg.users) == 1
    ):
        return arg
    return None


def quantize_graph(graph: torch.fx.Graph, tensors: _Tensors, scales: Mapping[str, float]) -> bool:
    """Apply the int8 scheme (:mod:`rt3d_mlir.quantization`) to each convolution and matrix product
    of a ``Linear`` whose module has a scale in ``scales``: its input rounded to the grid of the
    layer's scale, and a matrix product's weight to its per-output-channel int8 grid. A
    convolution's weight stays as it is (after batch norms folded: per-channel scales commute with
    the fold): the compiler puts it on its grid once it has recognized its pruned kernel groups
    from its zeros (``rt3d-quantize-convs``), and computes int8 layers with integer kernels where
    it has them. Raises UnsupportedModelError when a
    scale names no layer of the graph (a checkpoint of another model). Whether anything changed."""
    used: set[str] = set()
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        name = module_name(node)
        if name is None or name not in scales:
            continue
        if node.target in _CONVOLUTIONS:
            # the weights stay: the compiler recognizes the pruned groups from their zeros, which
            # weights rounded to the grid would blur, and puts them on the grid as it packs them
            x_index, args = 0, list(node.args)
        elif node.target in _PRODUCTS:
            x_index, w_index = _PRODUCTS[node.target]
            transposed = _linear_weight(node.args[w_index])
            weight = tensors(transposed.args[0]) if transposed is not None else None
            if weight is None or weight.dim() != 2:
                continue
            args = list(node.args)
            quantized = fake_quantize_weight(weight.float()).to(weight.dtype).detach()
            with graph.inserting_before(node):
                args[w_index] = graph.call_function(transposed.target, (quantized, *transposed.args[1:]))
            args[w_index].meta = dict(transposed.meta)
        else:
            continue
        args[x_index] = _fake_quantized(graph, node.args[x_index], float(scales[name]), node)
        node.args = tuple(args)
        used.add(name)
    unused = sorted(set(scales) - used)
    if unused:
        raise UnsupportedModelError(
            f"the int8 scale of layer '{unused[0]}' matches no convolution or linear layer of the model "
            f"({len(unused)} such scales)"
        )
    return bool(used)


# 2D models as 3D ones of depth 1 (lift_2d_to_3d): the ops whose 4-D (N, C, H, W) activations become
# 5-D (N, C, 1, H, W) ones. Elementwise ops: any tensor arguments are lifted activations or constants.
_ELEMENTWISE = frozenset({
    torch.ops.aten.relu.default, torch.ops.aten.sigmoid.default, torch.ops.aten.tanh.default,
    torch.ops.aten.exp.default, torch.ops.aten.neg.default, torch.ops.aten.round.default,
    torch.ops.aten.add.Tensor, torch.ops.aten.sub.Tensor, torch.ops.aten.mul.Tensor,
    torch.ops.aten.div.Tensor, torch.ops.aten.add.Scalar, torch.ops.aten.sub.Scalar,
    torch.ops.aten.mul.Scalar, torch.ops.aten.div.Scalar, torch.ops.aten.clamp.default,
    torch.ops.aten.clamp_min.default, torch.ops.aten.clamp_max.default, torch.ops.aten.hardtanh.default,
    torch.ops.aten.maximum.default, torch.ops.aten.minimum.default, torch.ops.aten.gelu.default,
    torch.ops.aten.erf.default, torch.ops.aten.where.self, torch.ops.aten.clone.default,
})


def lift_2d_to_3d(program: torch.export.ExportedProgram) -> bool:
    """Compute a model with 4-D (N, C, H, W) inputs as a 3D model of depth 1, in place.

    The compiler's kernels, layouts and fusions are those of 3D convolutions:
    each 2D activation is given a depth of 1 (``unsqueeze(x, 2)`` once, at
    the input), and each op reading lifted activations is replaced by its 3D
    form: convolutions (weights ``(F, C, 1, Kh, Kw)``, strides, padding and
    dilation of 1 in depth), max and average pools (windows of 1 in depth),
    concatenations (dimensions past the channels moved by one), means over
    the spatial dimensions and elementwise ops (per-channel constants
    ``(C, 1, 1)`` given the depth dimension). Any other op reads the
    activation squeezed back to 4-D, as do the outputs; a 4-D activation it
    computes (e.g. a nearest upsampling, which torch-mlir lowers in 2D only)
    is lifted again. A 2D conv is thus the same kernel as a 3D conv of depth
    1, with the same bias, batch-norm and activation fusions. Whether
    anything changed (models with 5-D inputs are left as they are).
    """
    graph = program.graph
    inputs = [
        node for node in graph.nodes
        if node.op == "placeholder" and node.name in program.graph_signature.user_inputs
        and isinstance(node.meta.get("val"), torch.Tensor) and node.meta["val"].dim() == 4
    ]
    if not inputs:
        return False
    fake_mode = inputs[0].meta["val"].fake_mode
    tensors = _Tensors(program)
    lifted: dict[torch.fx.Node, torch.fx.Node] = {}  # a 4-D activation -> its 5-D form
    squeezed: dict[torch.fx.Node, torch.fx.Node] = {}  # -> the 5-D form squeezed back, where needed
    created: set[torch.fx.Node] = set()

    def new(target, args, like: torch.fx.Node) -> torch.fx.Node:
        """A node computing ``target(*args)`` before ``like``, its value computed on fake tensors."""
        with graph.inserting_before(like):
            node = graph.call_function(target, tuple(args))
        def fake(arg):
            if isinstance(arg, torch.fx.Node):
                return arg.meta["val"]
            if isinstance(arg, torch.Tensor):
                return fake_mode.from_tensor(arg, static_shapes=True)
            if isinstance(arg, (list, tuple)):
                return type(arg)(fake(a) for a in arg)
            return arg
        with fake_mode:
            node.meta["val"] = target(*fake(list(args)))
        node.meta["nn_module_stack"] = like.meta.get("nn_module_stack", {})
        created.add(node)
        return node

    def restore(node: torch.fx.Node) -> torch.fx.Node:
        """The 4-D activation of a lifted node (squeezed once, where it is first needed)."""
        if node not in squeezed:
            anchor = lifted[node].next
            squeezed[node] = new(torch.ops.aten.squeeze.dim, [lifted[node], 2], anchor)
        return squeezed[node]

    for x in inputs:
        lifted[x] = new(torch.ops.aten.unsqueeze.default, [x, 2], x.next)
    for node in list(graph.nodes):
        if node in created or node in lifted or not any(a in lifted for a in node.all_input_nodes):
            continue
        if node.op == "call_function":
            replacement = _lifted_op(node, lifted, new, tensors)
            if replacement is _TUPLE:  # its values were lifted (lifted[getitem])
                continue
            if isinstance(replacement, tuple):  # not an activation: its uses read the new node
                node.replace_all_uses_with(replacement[0])
                continue
            if replacement is not None:
                lifted[node] = replacement
                continue
        node.args = torch.fx.node.map_arg(node.args, lambda a: restore(a) if a in lifted else a)
        node.kwargs = torch.fx.node.map_arg(node.kwargs, lambda a: restore(a) if a in lifted else a)
        value = node.meta.get("val")
        if isinstance(value, torch.Tensor) and value.dim() == 4 and value.is_floating_point():
            # an activation computed in 2D (e.g. an upsampling): lifted again for the ops after it
            lifted[node] = new(torch.ops.aten.unsqueeze.default, [node, 2], node.next)
    graph.eliminate_dead_code()
    return True


def _depth_constant(value: object) -> object:
    """A constant operand of an elementwise op on a lifted activation, given the depth dimension
    (a per-channel ``(C, 1, 1)`` or ``(1, C, 1, 1)`` becomes ``(C, 1, 1, 1)`` / ``(1, C, 1, 1, 1)``)."""
    if isinstance(value, torch.Tensor) and value.dim() >= 3:
        return value.unsqueeze(value.dim() - 2)
    return value


_TUPLE = object()  # _lifted_op's result for an op returning a tuple: its getitem users are lifted


def _lifted_op(node: torch.fx.Node, lifted: dict, new, tensors: _Tensors):
    """The 3D form of ``node`` reading lifted activations; ``(node,)`` for one whose result is not an
    activation (uses of ``node`` read it); None if it has none (it then reads them squeezed)."""
    aten = torch.ops.aten
    target, args = node.target, list(node.args)
    if node.kwargs:
        return None
    if target is aten.convolution.default and args[0] in lifted and not args[6]:
        weight = tensors(args[1])
        if weight is None or weight.dim() != 4:
            return None
        stride, padding, dilation, output_padding = args[3], args[4], args[5], args[7]
        return new(target, [
            lifted[args[0]], weight.unsqueeze(2), args[2], [1, *stride], [0, *padding], [1, *dilation],
            False, [0, *output_padding], args[8],
        ], node)
    if target is aten.max_pool2d_with_indices.default and args[0] in lifted:
        window, stride = list(args[1]), list(args[2]) if len(args) > 2 and args[2] else list(args[1])
        padding = list(args[3]) if len(args) > 3 else [0, 0]
        dilation = list(args[4]) if len(args) > 4 else [1, 1]
        ceil = bool(args[5]) if len(args) > 5 else False
        pooled = new(aten.max_pool3d_with_indices.default, [
            lifted[args[0]], [1, *window], [1, *stride], [0, *padding], [1, *dilation], ceil,
        ], node)
        for user in list(node.users):  # the (values, indices) tuple's values
            if user.target is operator.getitem and user.args[1] == 0:
                lifted[user] = new(operator.getitem, [pooled, 0], user)
        return _TUPLE
    if target is aten.avg_pool2d.default and args[0] in lifted:
        window = list(args[1])
        stride = list(args[2]) if len(args) > 2 and args[2] else window
        padding = list(args[3]) if len(args) > 3 else [0, 0]
        rest = args[4:7]  # ceil_mode, count_include_pad, divisor_override
        pool_args = [lifted[args[0]], [1, *window], [1, *stride], [0, *padding], *rest]
        return new(aten.avg_pool3d.default, pool_args, node)
    if target is aten.cat.default and all(a in lifted for a in args[0]):
        dim = args[1] if len(args) > 1 else 0
        dim = dim + 1 if dim >= 2 else (dim - 1 if dim <= -3 else dim)
        return new(target, [[lifted[a] for a in args[0]], dim], node)
    if target is aten.mean.dim and args[0] in lifted:
        keep = bool(args[2]) if len(args) > 2 else False
        if sorted(d % 4 for d in args[1]) != [2, 3]:
            return None  # only a mean over the plane keeps its meaning with a depth of 1 added
        result = new(target, [lifted[args[0]], [2, 3, 4], keep], node)
        return result if keep else (result,)
    if target in _ELEMENTWISE:
        operands = []
        for arg in args:
            if arg in lifted:
                operands.append(lifted[arg])
            elif isinstance(arg, torch.fx.Node):
                constant = tensors(arg)
                if constant is None:
                    return None  # a computed operand that is not a lifted activation
                operands.append(_depth_constant(constant))
            else:
                operands.append(_depth_constant(arg))
        return new(target, operands, node)
    return None

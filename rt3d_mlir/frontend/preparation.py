"""Make a model import-ready: bake in pruning masks (module level), fold batch norms (graph level)."""

from __future__ import annotations

import copy
import operator

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune


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


def _constant(graph_module: torch.fx.GraphModule, node: object) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node reads, or None for anything else."""
    if not isinstance(node, torch.fx.Node) or node.op != "get_attr":
        return None
    value = graph_module
    for part in str(node.target).split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, torch.Tensor) else None


def _single_result(node: torch.fx.Node) -> torch.fx.Node | None:
    """The node carrying a batch norm's output (the ``getitem 0`` of a tuple-returning op)."""
    if node.target in (torch.ops.aten.batch_norm.default,):
        return node
    users = list(node.users)
    if len(users) == 1 and users[0].target is operator.getitem and users[0].args[1] == 0:
        return users[0]
    return None


def fold_batch_norms(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram | nn.Module:
    """Fold every inference-mode batch norm that directly follows a convolution into it.

    Works on the exported graph, so it applies whatever the model's file
    format (``.pt``, ``.pt2``, checkpoint) and module classes (any
    ``Conv3d`` subclass, or a functional convolution): for each
    ``aten.conv*`` whose only user is an ``aten.batch_norm`` in inference
    mode (or ``_native_batch_norm_legit_no_training``) with constant
    statistics, the filters are scaled and the bias shifted. A filter is
    scaled by one factor, so exact zeros stay zero. Returns the program
    unchanged if nothing folds, else the folded graph as a module to export
    again.
    """
    graph_module = program.module()
    graph = graph_module.graph
    folded = 0
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
        weight = _constant(graph_module, conv.args[1])
        mean, var = _constant(graph_module, args[m_i]), _constant(graph_module, args[v_i])
        if result is None or weight is None or mean is None or var is None:
            continue
        gamma = _constant(graph_module, args[w_i]) if args[w_i] is not None else torch.ones_like(mean)
        beta = _constant(graph_module, args[b_i]) if args[b_i] is not None else torch.zeros_like(mean)
        conv_args = list(conv.args) + [None] * max(0, 3 - len(conv.args))
        bias = _constant(graph_module, conv_args[2]) if conv_args[2] is not None else torch.zeros_like(mean)
        if gamma is None or beta is None or bias is None or weight.shape[0] != mean.shape[0]:
            continue
        with torch.no_grad():
            scale = gamma.double() / torch.sqrt(var.double() + float(args[eps_i]))
            new_weight = (weight.double() * scale.reshape(-1, *[1] * (weight.dim() - 1))).to(weight.dtype)
            new_bias = ((bias.double() - mean.double()) * scale + beta.double()).to(weight.dtype)
        names = (f"_rt3d_folded_weight_{folded}", f"_rt3d_folded_bias_{folded}")
        graph_module.register_buffer(names[0], new_weight)
        graph_module.register_buffer(names[1], new_bias)
        with graph.inserting_before(conv):
            weight_node = graph.get_attr(names[0])
            bias_node = graph.get_attr(names[1])
        conv_args[1], conv_args[2] = weight_node, bias_node
        conv.args = tuple(conv_args)
        result.replace_all_uses_with(conv)
        for node in [result, bn] if result is not bn else [bn]:
            if not node.users:
                graph.erase_node(node)
        folded += 1
    if not folded:
        return program
    graph.eliminate_dead_code()
    graph.lint()
    graph_module.recompile()
    return graph_module


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

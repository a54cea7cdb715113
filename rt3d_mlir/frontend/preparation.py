"""Make a model import-ready: bake in pruning masks and fold BatchNorm."""

from __future__ import annotations

import copy

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


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm3d into the convolution before it.

    Uses ``torch.fx`` to find each ``Conv3d -> BatchNorm3d`` pair whose conv
    output feeds only the BatchNorm. A filter's weights are scaled by one
    factor, so exact zeros stay zero. Models that cannot be traced are
    returned unchanged (their BatchNorms import as elementwise ops).
    """
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception:
        return model
    modules = dict(traced.named_modules())
    changed = False
    for node in list(traced.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm3d):
            continue
        producer = node.args[0]
        if (
            not isinstance(producer, torch.fx.Node)
            or producer.op != "call_module"
            or not isinstance(modules.get(producer.target), nn.Conv3d)
            or len(producer.users) != 1
        ):
            continue
        conv, bn = modules[producer.target], modules[node.target]
        if not bn.track_running_stats or bn.running_mean is None:
            continue
        fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
        _set_submodule(traced, producer.target, fused)
        node.replace_all_uses_with(producer)
        traced.graph.erase_node(node)
        changed = True
    if not changed:
        return model
    traced.graph.lint()
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


def _set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, module)


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
    """A copy of ``model`` in eval mode with masks baked in and BatchNorm folded."""
    prepared = _copy_module(model).eval()
    bake_pruning(prepared)
    with torch.no_grad():
        return fold_batch_norms(prepared).eval()

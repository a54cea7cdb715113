"""Loading model files and preparing them for import."""

from __future__ import annotations

import pytest
import torch
from conftest import REL_TOL, compile_and_run, randomize_batch_norms, relative_error, torch_output
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

import rt3d_mlir
from rt3d_mlir.errors import ModelLoadError
from rt3d_mlir.frontend import load_model_file, prepare_for_import, save_checkpoint
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks

C3D_KWARGS = {"width": 1 / 16, "input_size": [16, 16, 16]}
C3D_SHAPE = (1, 3, 16, 16, 16)


def small_c3d() -> nn.Module:
    model = build_model("c3d", **C3D_KWARGS).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=11)
    return model


def test_pickled_module(tmp_path):
    model = small_c3d()
    path = tmp_path / "model.pt"
    torch.save(model, path)
    loaded = load_model_file(path)
    assert loaded.module is not None and loaded.default_input_shape == C3D_SHAPE
    x = torch.randn(*C3D_SHAPE)
    got = compile_and_run(str(path), x, tmp_path / "m.so")
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def test_exported_program(tmp_path):
    model = small_c3d()
    x = torch.randn(*C3D_SHAPE)
    path = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    loaded = load_model_file(path)
    assert loaded.program is not None and loaded.default_input_shape == C3D_SHAPE
    out = tmp_path / "m.so"
    rt3d_mlir.compile(str(path), output=out)
    got = rt3d_mlir.load(out)(x.numpy())
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def test_checkpoint_round_trip(tmp_path):
    model = small_c3d()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "c3d", C3D_KWARGS, model, sparsity={"scheme": "kgs", "group_shape": [4, 4]})
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["format"] == "rt3d-checkpoint" and raw["version"] == 1
    loaded = load_model_file(path)
    assert loaded.group_shape == (4, 4)
    assert loaded.default_input_shape == C3D_SHAPE
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[name], value)


def test_torch_prune_masks_are_baked_in(tmp_path):
    model = build_model("c3d", **C3D_KWARGS).eval()
    conv = model.features.conv2a
    mask = (torch.rand_like(conv.weight) > 0.5).float()
    torch_prune.custom_from_mask(conv, "weight", mask)
    assert hasattr(conv, "weight_orig")
    prepared = prepare_for_import(model)
    assert not hasattr(prepared.features.conv2a, "weight_orig")
    assert torch.equal(prepared.features.conv2a.weight, conv.weight_orig * mask)
    x = torch.randn(*C3D_SHAPE)
    got = compile_and_run(model, x, tmp_path / "m.so")
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


class ZeroPositions(nn.Module):
    def __init__(self, keep: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("keep", keep)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.keep


def test_parametrizations_are_baked_in():
    model = build_model("c3d", **C3D_KWARGS).eval()
    conv = model.features.conv3a
    keep = (torch.rand_like(conv.weight) > 0.3).float()
    parametrize.register_parametrization(conv, "weight", ZeroPositions(keep))
    expected = conv.weight.detach().clone()
    prepared = prepare_for_import(model)
    assert not parametrize.is_parametrized(prepared.features.conv3a)
    assert torch.equal(prepared.features.conv3a.weight, expected)


def test_batchnorm_folding_keeps_zeros_and_numerics():
    model = build_model("r2plus1d", width=1 / 16, input_size=(8, 16, 16))
    randomize_batch_norms(model)
    model.eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=4)
    prepared = prepare_for_import(model)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in prepared.modules())
    before = {n: m.weight for n, m in model.named_modules() if isinstance(m, nn.Conv3d)}
    after = {n: m.weight for n, m in prepared.named_modules() if isinstance(m, nn.Conv3d)}
    assert before.keys() == after.keys()
    for name, weight in before.items():
        assert torch.equal(weight == 0, after[name] == 0), name
    x = torch.randn(1, 3, 8, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), prepared(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "cannot read"),
        (b"this is not a model", "cannot read"),
    ],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        load_model_file(path)


def test_truncated_file(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(small_c3d(), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated or not a model"):
        load_model_file(bad)


def test_missing_file_and_non_models(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_file(tmp_path / "nope.pt")
    state = tmp_path / "state.pt"
    torch.save(small_c3d().state_dict(), state)
    with pytest.raises(ModelLoadError, match="bare state_dict"):
        load_model_file(state)
    other = tmp_path / "list.pt"
    torch.save([1, 2, 3], other)
    with pytest.raises(ModelLoadError, match="holds a list, not a model"):
        load_model_file(other)


def test_checkpoint_with_wrong_weights(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, "c3d", C3D_KWARGS, small_c3d())
    data = torch.load(path, weights_only=True)
    data["kwargs"]["width"] = 1 / 8
    torch.save(data, path)
    with pytest.raises(ModelLoadError, match="do not fit 'c3d'"):
        load_model_file(path)


def test_torch_ao_sparsifier_masks_are_baked_in(tmp_path):
    from torch.ao.pruning import BaseSparsifier

    class RandomSparsifier(BaseSparsifier):
        def update_mask(self, module, tensor_name, **kwargs):
            mask = getattr(module.parametrizations, tensor_name)[0].mask
            mask.data = torch.rand(mask.shape) > 0.5

    model = build_model("c3d", **C3D_KWARGS).eval()
    sparsifier = RandomSparsifier(defaults={})
    sparsifier.prepare(model, config=[{"tensor_fqn": "features.conv2a.weight"}])
    sparsifier.step()
    masked = model.features.conv2a.weight.detach().clone()
    assert (masked == 0).float().mean() > 0.3
    prepared = prepare_for_import(model)
    assert not parametrize.is_parametrized(prepared.features.conv2a)
    assert torch.equal(prepared.features.conv2a.weight, masked)
    x = torch.randn(*C3D_SHAPE)
    got = compile_and_run(model, x, tmp_path / "m.so")
    assert relative_error(got, torch_output(model, x)) <= REL_TOL
    # The user's model is untouched: still parametrized, still masked.
    assert parametrize.is_parametrized(model.features.conv2a)
    assert torch.equal(model.features.conv2a.weight, masked)

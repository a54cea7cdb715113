"""Loading model files and preparing them for import."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch
from conftest import REL_TOL, compile_and_run, randomize_batch_norms, relative_error, torch_output
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

import rt3d_mlir
from rt3d_mlir.errors import ModelLoadError
from rt3d_mlir.frontend import (
    import_to_linalg,
    load_model_file,
    prepare_for_import,
    prepare_graph,
    save_checkpoint,
)
from rt3d_mlir.frontend.importer import decompose
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks

C3D_KWARGS = {"width": 1 / 16, "input_size": [16, 16, 16]}
C3D_SHAPE = (1, 3, 16, 16, 16)


def small_c3d() -> nn.Module:
    model = build_model("c3d", **C3D_KWARGS).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=11)
    return model


class RunsCode:
    """Unpickling this touches a marker file: proof that a loader ran code from a file."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_module_needs_trust(tmp_path):
    model = small_c3d()
    path = tmp_path / "model.pt"
    torch.save(model, path)
    expected = r"pickled Python object \(rt3d_mlir.models.c3d.C3D\).*--trust-pickle"
    with pytest.raises(ModelLoadError, match=expected):
        load_model_file(path)
    with pytest.raises(ModelLoadError, match="trust_pickle=True"):
        rt3d_mlir.compile(str(path), output=tmp_path / "m.so")
    assert not (tmp_path / "m.so").exists()
    loaded = load_model_file(path, trust_pickle=True)
    assert loaded.module is not None and loaded.default_input_shape == C3D_SHAPE
    x = torch.randn(*C3D_SHAPE)
    got = compile_and_run(str(path), x, tmp_path / "m.so", trust_pickle=True)
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def test_hostile_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pt"
    torch.save({"format": "rt3d-checkpoint", "payload": RunsCode(marker)}, path)
    with pytest.raises(ModelLoadError, match="unpickling can run code"):
        load_model_file(path)
    assert not marker.exists()
    with pytest.raises(ModelLoadError):  # trusted: the code runs (and the file is no model)
        load_model_file(path, trust_pickle=True)
    assert marker.exists()


def _rewrite_archive(source, target, edit) -> None:
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, edit(info.filename, zin.read(info.filename)))


def _pickled(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("part", ["weight payload", "sample inputs", "constant object"])
def test_hostile_pt2_runs_no_code(tmp_path, part):
    model = nn.Sequential(nn.Conv3d(3, 4, 3)).eval()
    good = tmp_path / "good.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 4, 4, 4),)), good)
    marker = tmp_path / "ran"

    def edit(name: str, data: bytes) -> bytes:
        if part == "weight payload":
            if name.endswith("model_weights_config.json"):
                config = json.loads(data)
                config["config"]["0.weight"]["use_pickle"] = True
                return json.dumps(config).encode()
            if name.endswith("weights/weight_0"):
                return _pickled(RunsCode(marker))
        if part == "sample inputs" and "sample_inputs" in name:
            return _pickled(RunsCode(marker))
        if part == "constant object" and name.endswith("model_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "use_pickle": False}}}).encode()
        return data

    bad = tmp_path / "hostile.pt2"
    _rewrite_archive(good, bad, edit)
    with pytest.raises(ModelLoadError, match=r"can run code.*--trust-pickle"):
        load_model_file(bad)
    assert not marker.exists()
    assert load_model_file(good).program is not None


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


class Conv3DSimple(nn.Conv3d):
    """A Conv3d subclass, as torchvision's video models use."""


class SubclassedConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Conv3DSimple(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(8)
        self.conv2 = nn.Conv3d(8, 8, (1, 3, 3), padding=(0, 1, 1))
        self.bn2 = nn.BatchNorm3d(8)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)) + x)
        return self.fc(self.pool(x).flatten(1))


def _batch_norm_ops(program) -> list[str]:
    return [str(n.target) for n in program.graph.nodes if "batch_norm" in str(n.target)]


@pytest.mark.parametrize("arch", ["r2plus1d", "subclassed"])
def test_batchnorm_folding_on_the_exported_graph(arch, tmp_path):
    if arch == "r2plus1d":
        model = build_model("r2plus1d", width=1 / 16, input_size=(8, 16, 16))
    else:
        model = SubclassedConvNet()
    randomize_batch_norms(model)
    model.eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=4)
    x = torch.randn(1, 3, 8, 16, 16)
    program = decompose(torch.export.export(model, (x,)))
    assert _batch_norm_ops(program)
    assert prepare_graph(program)
    assert _batch_norm_ops(program) == []
    folded = [
        n.args[1] for n in program.graph.nodes
        if "convolution" in str(n.target) and isinstance(n.args[1], torch.Tensor)
    ]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert len(folded) == len(convs)  # every conv is followed by a batch norm
    assert sorted(int((w == 0).sum()) for w in folded) == sorted(int((m.weight == 0).sum()) for m in convs)
    got = compile_and_run(model, x, tmp_path / "m.so")
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def test_pt_pt2_and_checkpoint_compile_to_the_same_kernels(tmp_path):
    """Batch norms fold whatever the format: the three files give one kernel sequence."""
    from rt3d_mlir.backend.cpu import sparse_conv_pipeline
    from rt3d_mlir.passes import run_pipeline

    kwargs = {"width": 1 / 16, "input_size": [8, 16, 16]}
    model = build_model("r2plus1d", **kwargs)
    randomize_batch_norms(model)
    model.eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=5)
    x = torch.randn(1, 3, 8, 16, 16)
    files = {"pt": tmp_path / "m.pt", "pt2": tmp_path / "m.pt2", "checkpoint": tmp_path / "ckpt.pt"}
    torch.save(model, files["pt"])
    torch.export.save(torch.export.export(model, (x,)), files["pt2"])
    save_checkpoint(files["checkpoint"], "r2plus1d", kwargs, model)
    shapes = {}
    for kind, path in files.items():
        loaded = load_model_file(path, trust_pickle=kind == "pt")
        module = import_to_linalg(loaded.program if loaded.program is not None else loaded.module, x)
        assert "math.sqrt" not in str(module), f"{kind}: a batch norm was not folded"
        with module.context:
            run_pipeline(module, f"builtin.module({sparse_conv_pipeline((4, 4), target='host')})")
        forward = next(op for op in module.body.operations if "forward" in str(op.attributes["sym_name"]))
        shapes[kind] = [
            op.name if op.name != "func.call" else str(op.attributes["callee"]).split("_")[0]
            for op in forward.regions[0].blocks[0].operations
        ]
        out = tmp_path / f"{kind}.so"
        rt3d_mlir.compile(str(path), output=out, trust_pickle=kind == "pt")
        got = rt3d_mlir.load(out)(x.numpy())
        assert relative_error(got, torch_output(model, x)) <= REL_TOL, kind
    assert shapes["pt"] == shapes["pt2"] == shapes["checkpoint"]
    assert sum(name == "@rt3d" for name in shapes["pt2"]) >= 10


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

"""The SPIR-V target: GPU kernels for whole models, valid SPIR-V, run on lavapipe through Vulkan."""

from __future__ import annotations

import json
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from conftest import REL_TOL, relative_error, torch_output
from test_cli import assert_one_line_error, run
from test_compile_numerics import tiny
from torch import nn

import rt3d_mlir
from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.pruning import apply_random_masks


def spirv_val(artifact, tmp_path) -> None:
    """Every kernel of the artifact passes spirv-val for the Vulkan 1.1 environment."""
    with zipfile.ZipFile(artifact) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["format"] == "rt3d-spirv" and manifest["target_env"] == "vulkan1.1"
        for kernel in manifest["kernels"]:
            path = tmp_path / f"{kernel['name']}.spv"
            path.write_bytes(archive.read(kernel["module"]))
            result = subprocess.run(
                ["spirv-val", "--target-env", "vulkan1.1", str(path)], capture_output=True, text=True
            )
            assert result.returncode == 0, (kernel["name"], result.stderr)


@pytest.mark.parametrize(
    "arch, scheme, group_shape",
    [
        ("c3d", "kgs", (4, 4)),
        ("c3d", "kgs", (16, 4)),
        ("c3d", "vanilla", (4, 4)),
        ("c3d", None, None),
        ("r2plus1d", "kgs", (4, 4)),
        ("r2plus1d", "vanilla", (2, 4)),
        ("s3d", "kgs", (4, 4)),
        ("s3d", "vanilla", (4, 2)),
    ],
)
def test_spirv_build_matches_torch_on_lavapipe(arch, scheme, group_shape, tmp_path):
    model, x = tiny(arch)
    if scheme is not None:
        apply_random_masks(model, group_shape, 0.4, scheme, seed=3)
    out = tmp_path / f"{arch}.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv", group_shape=group_shape)
    spirv_val(out, tmp_path)
    compiled = rt3d_mlir.load(out)
    assert compiled.input_shape == tuple(x.shape)
    assert relative_error(compiled(x.numpy()), torch_output(model, x)) <= REL_TOL
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    if scheme == "kgs":
        assert manifest["flops"] < manifest["dense_flops"]  # only kept entries are visited


@pytest.fixture(scope="module")
def tiny_c3d_file(tmp_path_factory):
    model, x = tiny("c3d")
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=3)
    path = tmp_path_factory.mktemp("spirv") / "model.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    return model, x, path


def test_spirv_cli_compile_and_run(tiny_c3d_file, tmp_path):
    model, x, checkpoint = tiny_c3d_file
    out, shape = tmp_path / "model.spv", ",".join(map(str, x.shape))
    result = run("rt3d-compile", str(checkpoint), "-o", str(out), "--target", "spirv", "--input-shape", shape)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "x.npy", x.numpy())
    x_path, y = tmp_path / "x.npy", tmp_path / "y.npy"
    result = run("rt3d-run", str(out), "--input", str(x_path), "--output", str(y), "--device", "0")
    assert result.returncode == 0, result.stderr
    assert relative_error(np.load(y), torch_output(model, x)) <= REL_TOL


def test_spirv_rejects_cpu_options(tiny_c3d_file, tmp_path):
    _, x, checkpoint = tiny_c3d_file
    out, shape = tmp_path / "model.spv", ",".join(map(str, x.shape))
    result = run(
        "rt3d-compile",
        str(checkpoint),
        "-o",
        str(out),
        "--target",
        "spirv",
        "--cpu",
        "cortex-a76",
        "--input-shape",
        shape,
    )
    assert_one_line_error(result, "spirv")
    assert not out.exists()


def test_conv_tiles_with_a_partial_last_tile(tmp_path):
    """1000 output positions: 8 per invocation, the second 512-position tile only partly valid."""
    from rt3d_mlir.codegen.gpu.conv import positions_per_invocation

    assert [positions_per_invocation(n) for n in (1000, 784, 32)] == [8, 2, 1]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.ReLU()).eval()
    x = torch.randn(1, 4, 10, 10, 10)
    out = tmp_path / "conv.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv")
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_conv_feeding_a_conv_writes_its_padded_output_in_place(tmp_path):
    """Pad elision: only the model input is padded by a dispatch; conv1 writes into conv2's padded input."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 8, 3, padding=(0, 1, 1))
    ).eval()
    x = torch.randn(1, 4, 6, 9, 9)
    out = tmp_path / "convs.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv")
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    labels = [d["label"] for d in manifest["dispatches"]]
    assert labels == ["pad1", "conv1", "conv2"]
    assert [b["init"] for b in manifest["buffers"]].count("zero") == 1
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


@pytest.mark.parametrize(
    "layers",
    [
        # average pool, FC, softmax (a max/argmax generic with an unused second result, math.exp)
        lambda: [
            torch.nn.Conv3d(3, 8, 3, padding=1),
            torch.nn.AvgPool3d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(8 * 4 * 4 * 4, 5),
            torch.nn.Softmax(dim=1),
        ],
        # BatchNorm (folded), sigmoid, global average pool (output maps with constant indices)
        lambda: [
            torch.nn.Conv3d(3, 8, 3, padding=1),
            torch.nn.BatchNorm3d(8),
            torch.nn.Sigmoid(),
            torch.nn.AdaptiveAvgPool3d(1),
            torch.nn.Flatten(),
        ],
        # strided conv, max pool with -inf padding
        lambda: [
            torch.nn.Conv3d(3, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool3d(3, 2, padding=1),
        ],
    ],
    ids=["avgpool-softmax", "bn-sigmoid-globalpool", "stride-maxpool-pad"],
)
def test_spirv_layers_beyond_the_three_models(layers, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(*layers()).eval()
    x = torch.randn(1, 3, 8, 8, 8)
    out = tmp_path / "m.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv")
    spirv_val(out, tmp_path)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


# ----------------------------------------------------------------- generated combinations


class Generated(nn.Module):
    """A small random network from a menu of the layers the target accepts, with odd shapes.

    Batch norms sit both right after a convolution (folded on the exported graph) and after an
    activation (kept: its epsilon, 1e-05, reaches the kernel text as a float constant).
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        channels = int(rng.integers(3, 6))
        self.input_shape = (1, channels, int(rng.integers(3, 6)), int(rng.integers(5, 10)),
                            int(rng.integers(5, 10)))
        layers: list[nn.Module] = []
        for _ in range(int(rng.integers(1, 3))):
            out = int(rng.integers(3, 9))
            kernel = tuple(int(k) for k in rng.choice([1, 2, 3], 3))
            stride = tuple(int(s) for s in rng.choice([1, 1, 2], 3))
            padding = tuple(k // 2 for k in kernel)
            layers.append(nn.Conv3d(channels, out, kernel, stride, padding, bias=bool(rng.integers(2))))
            if rng.integers(2):
                layers.append(nn.BatchNorm3d(out))
            layers.append([nn.ReLU(), nn.Sigmoid(), nn.SiLU(), nn.Tanh()][int(rng.integers(4))])
            if rng.integers(2):
                layers.append(nn.BatchNorm3d(out, eps=float(rng.choice([1e-5, 1e-3, 0.1]))))
            pool = int(rng.integers(3))
            if pool == 1:
                layers.append(nn.MaxPool3d((1, 2, 2), (1, 2, 2), (0, 1, 1)))
            elif pool == 2:
                layers.append(nn.AvgPool3d((1, 2, 2), ceil_mode=True))
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1) if rng.integers(2) else nn.AdaptiveMaxPool3d(1)
        self.head = nn.Linear(channels, int(rng.integers(2, 7)))
        self.softmax = bool(rng.integers(2))
        for module in self.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        y = self.head(self.pool(self.features(x)).flatten(1))
        return torch.softmax(y, dim=-1) if self.softmax else y


@pytest.mark.parametrize("seed", range(6))
def test_generated_layer_combinations_parse_and_match_on_both_formats(seed, tmp_path):
    """The generated kernel text parses for every combination (a float printed with repr(), such as
    BatchNorm's 1e-05, once broke .pt2 models), from a pickled module and from an ExportedProgram."""
    torch.manual_seed(seed)
    model = Generated(seed).eval()
    x = torch.randn(*model.input_shape)
    expected = torch_output(model, x)
    pickled, exported = tmp_path / "m.pt", tmp_path / "m.pt2"
    torch.save(model, pickled)
    torch.export.save(torch.export.export(model, (x,)), exported)
    for path in (pickled, exported):
        out = tmp_path / f"{path.suffix[1:]}.spv"
        rt3d_mlir.compile(str(path), output=out, target="spirv", trust_pickle=path == pickled,
                          input_shape=x.shape)
        spirv_val(out, tmp_path)
        with rt3d_mlir.load(out) as compiled:
            assert relative_error(compiled(x.numpy()), expected) <= REL_TOL, path.name


def test_tampered_manifest_of_a_compiled_model_is_refused(tiny_c3d_file, tmp_path):
    """Shrinking any buffer a kernel uses, or growing a grid, is caught against the kernels' SPIR-V."""
    _, x, path = tiny_c3d_file
    np.save(tmp_path / "x.npy", x.numpy())
    good = tmp_path / "good.spv"
    rt3d_mlir.compile(str(path), output=good, target="spirv")
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    conv = next(d for d in manifest["dispatches"] if d["label"].startswith("conv"))
    edits = {
        "shrunken weights": lambda m: m["buffers"][conv["buffers"][1]].update(bytes=16),
        "shrunken output": lambda m: m["buffers"][conv["buffers"][-1]].update(bytes=16),
        "grown grid": lambda m: next(d for d in m["dispatches"] if d["label"] == conv["label"]).update(
            groups=[conv["groups"][0] + 1, *conv["groups"][1:]]
        ),
    }
    for name, edit in edits.items():
        tampered = json.loads(members["manifest.json"])
        edit(tampered)
        bad = tmp_path / "bad.spv"
        with zipfile.ZipFile(bad, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, json.dumps(tampered) if member == "manifest.json" else data)
        with pytest.raises(rt3d_mlir.Rt3dError, match="is not a valid SPIR-V artifact"):
            rt3d_mlir.load(bad)
        result = run("rt3d-run", str(bad), "--input", str(tmp_path / "x.npy"))
        assert_one_line_error(result, "is not a valid SPIR-V artifact"), name


class ConvChain(nn.Module):
    """Convs read only by convs (padded: pad elision; a 1x1 one: unpadded), then a pool."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(4, 8, 3, padding=1)
        self.b = nn.Conv3d(8, 8, 3, padding=(0, 1, 1))
        self.c = nn.Conv3d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.max_pool3d(self.c(torch.relu(self.b(torch.relu(self.a(x))))), 2)


def test_fp16_keeps_the_activations_between_convs_in_half(tmp_path):
    """a's and b's results (read only by convs) are f16 buffers; b and c read them with f16 weights,
    summing each entry in f16 (Float16, 16-bit storage: lavapipe offers both); c's result, read by
    the pool, stays f32."""
    from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR

    torch.manual_seed(0)
    model, x = ConvChain().eval(), torch.randn(1, 4, 6, 9, 9)
    fp32, fp16 = tmp_path / "fp32.spv", tmp_path / "fp16.spv"
    rt3d_mlir.compile(model, x, output=fp32, target="spirv")
    rt3d_mlir.compile(model, x, output=fp16, target="spirv", precision="fp16")
    spirv_val(fp16, tmp_path)
    sizes = {}
    for path, precision in ((fp32, "fp32"), (fp16, "fp16")):
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        assert manifest["precision"] == precision  # the artifact records it
        sizes[path] = sorted(b["bytes"] for b in manifest["buffers"] if b["init"] != "weights")
    # the input, c's output and the pool's output stay f32; a's (padded) and b's outputs halve
    assert sum(sizes[fp16]) < sum(sizes[fp32]) and len(sizes[fp16]) == len(sizes[fp32])

    def r(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.float16).float()

    with torch.no_grad():
        y = r(torch.relu(model.a(x)))
        y = r(torch.relu(nn.functional.conv3d(y, r(model.b.weight), model.b.bias, padding=(0, 1, 1))))
        want = nn.functional.max_pool3d(nn.functional.conv3d(y, r(model.c.weight), model.c.bias), 2)
    with rt3d_mlir.load(fp16) as compiled:
        got = compiled(x.numpy())
        assert compiled.precision == "fp16"
    # f16 sums of each entry (up to 8 channels: 2e-3, as on the CPU), against the reference that
    # rounds what is stored; and the fp16 tolerance against the f32 model
    assert relative_error(got, want.numpy()) <= 2e-3
    assert relative_error(got, torch_output(model, x)) <= MAX_RELATIVE_ERROR["fp16"]


@pytest.mark.parametrize("arch", ["c3d", "r2plus1d"])
def test_fp16_builds_match_torch_on_lavapipe(arch, tmp_path):
    from rt3d_mlir.kernel_packing import MAX_RELATIVE_ERROR

    model, x = tiny(arch)
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=3)
    out = tmp_path / f"{arch}.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv", group_shape=(4, 4), precision="fp16")
    spirv_val(out, tmp_path)
    error = relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x))
    assert error <= MAX_RELATIVE_ERROR["fp16"]


@pytest.mark.parametrize(
    "precision, needs",
    [("fp16", "shaderFloat16 and storageBuffer16BitAccess"), ("int8", "shaderIntegerDotProduct")],
)
def test_a_device_without_the_features_of_a_precision_is_a_clear_error(precision, needs, tmp_path,
                                                                       monkeypatch):
    """fp16 builds need f16 arithmetic and 16-bit storage; int8 builds integer dot products."""
    import vulkan

    from rt3d_mlir.quantization import calibrate

    torch.manual_seed(0)
    model, x = ConvChain().eval(), torch.randn(1, 4, 6, 9, 9)
    out = tmp_path / f"{precision}.spv"
    scales = calibrate(model, [x]) if precision == "int8" else None
    rt3d_mlir.compile(model, x, output=out, target="spirv", precision=precision, int8_scales=scales)
    monkeypatch.setattr(vulkan, "vkGetPhysicalDeviceFeatures2", lambda device, features: None)  # offers none
    with pytest.raises(ArtifactError) as err:
        rt3d_mlir.load(out)
    message = str(err.value)
    assert f"computes in {precision} and needs {needs}" in message and "--precision fp32" in message
    assert "\n" not in message


OP_SDOT = 4450  # SPIR-V opcode of OpSDot (SPV_KHR_integer_dot_product)


def _opcode_count(code: bytes, opcode: int) -> int:
    words = np.frombuffer(code, dtype="<u4")
    count, i = 0, 5
    while i < len(words):
        count += int(words[i]) & 0xFFFF == opcode
        i += int(words[i]) >> 16
    return count


@pytest.mark.parametrize("arch, groups", [("c3d", (16, 16)), ("c3d", (4, 4)), ("r2plus1d", (4, 4))])
def test_int8_builds_compute_the_int8_scheme_on_lavapipe(arch, groups, tmp_path):
    """int8 on SPIR-V: the convs of quantized inputs with whole channel quads read them quantized
    (four bytes to a word, stored by the int8 conv before them where it is the only producer) and
    sum int8 weight quads by OpSDot; conv1a (3 channels) keeps its f32 kernel with its weights on
    the grid. The build computes the scheme (simulated in PyTorch; the
    tolerance is the CPU builds', test_int8.INT8_TOL) and needs the device's integer dot products."""
    from test_int8 import INT8_TOL, _simulated

    from rt3d_mlir.quantization import calibrate
    from rt3d_mlir.runtime.spirv_artifact import read_artifact

    model, x = tiny(arch)
    apply_random_masks(model, groups, 0.5, "kgs", seed=1)
    scales = calibrate(model, [torch.randn(2, *x.shape[1:]), x])
    out = tmp_path / f"{arch}.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv", precision="int8", int8_scales=scales,
                      group_shape=groups)
    spirv_val(out, tmp_path)
    artifact = read_artifact(str(out))
    assert artifact.program.precision == "int8"
    assert artifact.features == {"shaderIntegerDotProduct"}
    convs = {k.name: artifact.modules[k.name] for k in artifact.program.kernels.values() if "conv" in k.name}
    with_dots = [name for name, code in convs.items() if _opcode_count(code, OP_SDOT)]
    assert 0 < len(with_dots) < len(convs)  # all but conv1a
    if arch == "c3d":
        # int8 between convs: conv3b, 4b and 5b read the words conv3a, 4a and 5a stored from their
        # epilogues; the convs after a pool (2a, 3a, 4a, 5a) read theirs from a quantize kernel
        quantize = [k for k in artifact.program.kernels.values() if k.name.startswith("rt3d_quantize")]
        assert len(quantize) == 4
    with rt3d_mlir.load(out) as compiled:
        got = compiled(x.numpy())
        assert compiled.precision == "int8"
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL
    assert relative_error(got, torch_output(model, x)) <= 0.05


class QuantizedPair(nn.Module):
    """Two convs with 30 channels between them: padded to 32 through the int8 quantization."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(4, 30, 3, padding=1)
        self.b = nn.Conv3d(30, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_int8_channels_are_padded_to_quads_through_the_quantization(tmp_path):
    """b reads 30 channels: rt3d-pad-channels pads a's filters and b's channels to 32 through the
    importer's quantization between them, so b takes an int8 kernel too (OpSDot in both convs)."""
    from test_int8 import INT8_TOL, _simulated

    from rt3d_mlir.quantization import calibrate
    from rt3d_mlir.runtime.spirv_artifact import read_artifact

    torch.manual_seed(0)
    model, x = QuantizedPair().eval(), torch.randn(1, 4, 4, 8, 8)
    scales = calibrate(model, [x])
    out = tmp_path / "pair.spv"
    rt3d_mlir.compile(model, x, output=out, target="spirv", precision="int8", int8_scales=scales)
    artifact = read_artifact(str(out))
    convs = [artifact.modules[k.name] for k in artifact.program.kernels.values() if "conv" in k.name]
    assert len(convs) == 2 and all(_opcode_count(code, OP_SDOT) for code in convs)
    got = rt3d_mlir.load(out)(x.numpy())
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL


def test_int8_spirv_artifacts_store_int8_weights(tmp_path):
    """The weights of an int8 SPIR-V build are a quarter of the fp32 ones, give or take conv1a,
    biases, scales and tables: conv weights as int8 quads, the FC layers' (two thirds of C3D's
    weights) as int8 words with one scale per output (rt3d-gpu-matmul)."""
    from test_int8 import INT8_TOL, _simulated

    from rt3d_mlir.models import build_model
    from rt3d_mlir.quantization import calibrate

    model = build_model("c3d", num_classes=5, width=0.5, input_size=(16, 32, 32)).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    scales = calibrate(model, [x])
    sizes = {}
    for precision in ("fp32", "int8"):
        out = tmp_path / f"{precision}.spv"
        rt3d_mlir.compile(model, x, output=out, target="spirv", precision=precision,
                          int8_scales=scales if precision == "int8" else None)
        with zipfile.ZipFile(out) as archive:
            sizes[precision] = archive.getinfo("weights.bin").file_size
            labels = [d["label"] for d in json.loads(archive.read("manifest.json"))["dispatches"]]
    assert sum(label.startswith("matmul") for label in labels) == 3  # fc6, fc7, fc8
    assert sizes["int8"] < 0.3 * sizes["fp32"]
    got = rt3d_mlir.load(tmp_path / "int8.spv")(x.numpy())
    assert relative_error(got, _simulated(model, scales, x)) <= INT8_TOL

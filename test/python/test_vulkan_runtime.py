"""The Vulkan runtime for SPIR-V artifacts (docs/spirv_artifact.md), on lavapipe or a GPU.

The artifacts are built here: small kernels written in SPIR-V assembly
(``spirv-as``, checked with ``spirv-val``) and a manifest, zipped per the
format, so the runtime is tested independently of the compiler.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from test_cli import assert_one_line_error, run

import rt3d_mlir
from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.runtime import spirv_artifact
from rt3d_mlir.runtime import vulkan as vulkan_runtime
from rt3d_mlir.runtime.spirv_artifact import is_spirv_artifact
from rt3d_mlir.runtime.vulkan import VulkanModel, vulkan_devices

N = 1000  # elements per vector: not a multiple of the workgroup size, so the bounds check matters
GROUPS = [(N + 63) // 64, 1, 1]
BIAS = -0.25
TARGET_ENV = "vulkan1.1"

# An elementwise compute kernel over i = gl_GlobalInvocationID.x < N, with
# storage buffers %b0 .. %b{k-1} (float arrays of the kernel's sizes) at set
# 0, bindings 0 .. k-1.
_KERNEL = """
OpCapability Shader
%glsl = OpExtInstImport "GLSL.std.450"
OpMemoryModel Logical GLSL450
OpEntryPoint GLCompute %main "{entry}" %gid
OpExecutionMode %main LocalSize 64 1 1
OpDecorate %gid BuiltIn GlobalInvocationId
{decorations}
%void = OpTypeVoid
%fn = OpTypeFunction %void
%uint = OpTypeInt 32 0
%float = OpTypeFloat 32
%bool = OpTypeBool
%v3uint = OpTypeVector %uint 3
%ptr_in = OpTypePointer Input %v3uint
%gid = OpVariable %ptr_in Input
%ptr_f = OpTypePointer StorageBuffer %float
{variables}
%u0 = OpConstant %uint 0
%u1 = OpConstant %uint 1
%u2 = OpConstant %uint 2
%n = OpConstant %uint {n}
%f0 = OpConstant %float 0
%f1 = OpConstant %float 1
%f2 = OpConstant %float 2
%bias = OpConstant %float {bias}
%main = OpFunction %void None %fn
%start = OpLabel
%g = OpLoad %v3uint %gid
%i = OpCompositeExtract %uint %g 0
%inside = OpULessThan %bool %i %n
OpSelectionMerge %end None
OpBranchConditional %inside %body %end
%body = OpLabel
{body}
OpBranch %end
%end = OpLabel
OpReturn
OpFunctionEnd
"""

# name -> (bindings, body, float elements of each binding); %bK is binding K.
KERNELS = {
    # y = max(x * w + bias, 0), w a "weights" buffer
    "affine_relu": (3, """
%px = OpAccessChain %ptr_f %b0 %u0 %i
%x = OpLoad %float %px
%pw = OpAccessChain %ptr_f %b1 %u0 %i
%w = OpLoad %float %pw
%m = OpFMul %float %x %w
%a = OpFAdd %float %m %bias
%r = OpExtInst %float %glsl FMax %a %f0
%py = OpAccessChain %ptr_f %b2 %u0 %i
OpStore %py %r
""", (N, N, N)),
    # dst = 2 * src + 1 (exact in float32)
    "scale": (2, """
%px = OpAccessChain %ptr_f %b0 %u0 %i
%x = OpLoad %float %px
%m = OpFMul %float %x %f2
%a = OpFAdd %float %m %f1
%py = OpAccessChain %ptr_f %b1 %u0 %i
OpStore %py %a
""", (N, N)),
    # padded[i + 1] = x[i]: the borders padded[0] and padded[N + 1] are never written
    "pad": (2, """
%px = OpAccessChain %ptr_f %b0 %u0 %i
%x = OpLoad %float %px
%j = OpIAdd %uint %i %u1
%py = OpAccessChain %ptr_f %b1 %u0 %j
OpStore %py %x
""", (N, N + 2)),
    # y[i] = padded[i] + padded[i + 1] + padded[i + 2]
    "sum3": (2, """
%p0 = OpAccessChain %ptr_f %b0 %u0 %i
%v0 = OpLoad %float %p0
%i1 = OpIAdd %uint %i %u1
%p1 = OpAccessChain %ptr_f %b0 %u0 %i1
%v1 = OpLoad %float %p1
%i2 = OpIAdd %uint %i %u2
%p2 = OpAccessChain %ptr_f %b0 %u0 %i2
%v2 = OpLoad %float %p2
%s = OpFAdd %float %v0 %v1
%t = OpFAdd %float %s %v2
%py = OpAccessChain %ptr_f %b1 %u0 %i
OpStore %py %t
""", (N + 2, N)),
}


def kernel_asm(
    name: str, bindings: int | None = None, entry: str | None = None, unsized: bool = False
) -> str:
    declared, body, lengths = KERNELS[name]
    count = declared if bindings is None else bindings
    lengths = (*lengths, *[N] * (count - len(lengths)))
    decorations, variables = [], []
    for j in range(count):
        decorations += [
            f"OpDecorate %b{j} DescriptorSet 0", f"OpDecorate %b{j} Binding {j}",
            f"OpDecorate %arr{j} ArrayStride 4", f"OpMemberDecorate %Buf{j} 0 Offset 0",
            f"OpDecorate %Buf{j} Block",
        ]
        array = "OpTypeRuntimeArray %float" if unsized else f"OpTypeArray %float %len{j}"
        variables += [
            f"%len{j} = OpConstant %uint {lengths[j]}",
            f"%arr{j} = {array}",
            f"%Buf{j} = OpTypeStruct %arr{j}",
            f"%ptr_buf{j} = OpTypePointer StorageBuffer %Buf{j}",
            f"%b{j} = OpVariable %ptr_buf{j} StorageBuffer",
        ]
    decorations, variables = "\n".join(decorations), "\n".join(variables)
    if name == "affine_relu":
        decorations += "\nOpDecorate %m NoContraction"  # x * w + b rounded twice, as numpy does
    return _KERNEL.format(
        entry=entry or name, decorations=decorations, variables=variables, n=N, bias=BIAS, body=body
    )


def assemble(asm: str, work) -> bytes:
    source, binary = work / "kernel.spvasm", work / "kernel.spv"
    source.write_text(asm)
    subprocess.run(["spirv-as", "--target-env", TARGET_ENV, str(source), "-o", str(binary)], check=True)
    result = subprocess.run(
        ["spirv-val", "--target-env", TARGET_ENV, str(binary)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return binary.read_bytes()


@pytest.fixture(scope="module")
def spirv(tmp_path_factory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("spirv")
    return {name: assemble(kernel_asm(name), work) for name in KERNELS}


def write_artifact(path, manifest: dict, modules: dict[str, bytes], weights: bytes | None = None):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, code in modules.items():
            zf.writestr(f"kernels/{name}.spv", code)
        if weights is not None:
            zf.writestr("weights.bin", weights)
    return path


def manifest(buffers: list[dict], kernels: list[str], dispatches: list[dict], output: int) -> dict:
    return {
        "format": "rt3d-spirv",
        "version": 2,
        "target_env": TARGET_ENV,
        "input": {"buffer": 0, "shape": [1, N], "dtype": "float32"},
        "output": {"buffer": output, "shape": [1, N], "dtype": "float32"},
        "buffers": buffers,
        "kernels": [
            {"name": k, "module": f"kernels/{k}.spv", "entry": k, "bindings": KERNELS[k][0],
             "workgroup_size": [64, 1, 1], "groups": GROUPS}
            for k in kernels
        ],
        "dispatches": dispatches,
        "flops": 2 * N * len(dispatches),
        "dense_flops": 2 * N * len(dispatches),
    }


VECTOR = {"bytes": 4 * N, "init": "none"}
WEIGHTS = np.linspace(-2.0, 2.0, N, dtype=np.float32)


def affine_manifest() -> dict:
    # weights.bin: an unrelated 256-byte constant first, so the offset matters
    buffers = [VECTOR, {"bytes": 4 * N, "init": "weights", "offset": 256}, VECTOR]
    dispatches = [{"kernel": "affine_relu", "buffers": [0, 1, 2], "groups": GROUPS, "label": "fc",
                   "flops": 2 * N, "dense_flops": 4 * N}]
    return manifest(buffers, ["affine_relu"], dispatches, output=2)


def affine_weights() -> bytes:
    return np.full(64, 7.0, dtype=np.float32).tobytes() + WEIGHTS.tobytes()


@pytest.fixture
def affine(spirv, tmp_path):
    return write_artifact(tmp_path / "affine.spv", affine_manifest(), {"affine_relu": spirv["affine_relu"]},
                          affine_weights())


@pytest.fixture
def chain(spirv, tmp_path):
    """Four dispatches ping-ponging through two intermediates: x -> a -> b -> a -> y."""
    steps = [(0, 1), (1, 2), (2, 1), (1, 3)]
    dispatches = [{"kernel": "scale", "buffers": list(s), "groups": GROUPS, "label": f"step{k}"}
                  for k, s in enumerate(steps)]
    m = manifest([VECTOR] * 4, ["scale"], dispatches, output=3)
    return write_artifact(tmp_path / "chain.spv", m, {"scale": spirv["scale"]})


@pytest.fixture
def padded(spirv, tmp_path):
    """A zero-initialised padded buffer, written in its interior only, read with its borders."""
    buffers = [VECTOR, {"bytes": 4 * (N + 2), "init": "zero"}, VECTOR]
    dispatches = [{"kernel": "pad", "buffers": [0, 1], "groups": GROUPS},
                  {"kernel": "sum3", "buffers": [1, 2], "groups": GROUPS}]
    m = manifest(buffers, ["pad", "sum3"], dispatches, output=2)
    return write_artifact(tmp_path / "padded.spv", m, {"pad": spirv["pad"], "sum3": spirv["sum3"]})


def random_input(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, N)).astype(np.float32)


@pytest.mark.parametrize("staging", [None, 1000], ids=["one-upload", "chunked-upload"])
def test_weights_kernel_matches_numpy(affine, staging, monkeypatch):
    if staging is not None:
        monkeypatch.setattr(vulkan_runtime, "_STAGING_BYTES", staging)  # 4000 bytes of weights in 4 uploads
    assert is_spirv_artifact(affine)
    model = rt3d_mlir.load(affine)
    assert isinstance(model, VulkanModel)
    assert model.input_shape == (1, N) and model.output_shape == (1, N)
    assert model.device_name in vulkan_devices()
    for seed in range(2):
        x = random_input(seed)
        expected = np.maximum(x * WEIGHTS + np.float32(BIAS), 0)
        np.testing.assert_allclose(model(x), expected, rtol=1e-6, atol=1e-7)
    out = np.empty((1, N), dtype=np.float32)
    assert model(x.astype(np.float64), out=out) is out  # float64 input is converted
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    model.close()


def test_weights_are_uploaded_byte_exact_across_staging_chunks(spirv, tmp_path, monkeypatch):
    monkeypatch.setattr(vulkan_runtime, "_STAGING_BYTES", 1000)
    weights = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    buffers = [VECTOR, VECTOR, {"bytes": 1200, "init": "weights", "offset": 256},
               {"bytes": 2000, "init": "weights", "offset": 1536}]
    m = manifest(buffers, ["scale"], [{"kernel": "scale", "buffers": [0, 1], "groups": GROUPS}], output=3)
    m["output"]["shape"] = [500]  # read back the second weights buffer as is
    path = write_artifact(tmp_path / "roundtrip.spv", m, {"scale": spirv["scale"]}, weights)
    with rt3d_mlir.load(path) as model:
        assert model(random_input()).tobytes() == weights[1536:3536]


def test_dispatch_chain_runs_in_order_through_intermediates(chain):
    with rt3d_mlir.load(chain, threads=3) as model:  # threads: accepted, no effect
        for seed in range(3):
            x = random_input(seed)
            expected = x
            for _ in range(4):
                expected = expected * np.float32(2) + np.float32(1)
            np.testing.assert_array_equal(model(x), expected)


def test_zero_initialised_buffer_keeps_its_borders(chain, padded):
    with rt3d_mlir.load(chain) as dirty:  # leave non-zero data in freed device memory first
        dirty(np.full((1, N), 3.0, dtype=np.float32))
    with rt3d_mlir.load(padded) as model:
        for seed in range(2):
            x = random_input(seed)
            p = np.concatenate([[0], x[0], [0]]).astype(np.float32)
            expected = ((p[:-2] + p[1:-1]) + p[2:])[None]
            np.testing.assert_array_equal(model(x), expected)


def test_kernel_profile_reports_each_dispatch(affine, chain):
    with rt3d_mlir.load(chain) as model:
        x = random_input()
        plain = model(x)
        model.set_profiling(True)
        for _ in range(3):
            np.testing.assert_array_equal(model(x), plain)
        profile = model.kernel_profile()
        assert [p.name for p in profile] == ["step0", "step1", "step2", "step3"]
        assert all(p.calls == 3 and p.seconds >= 0 for p in profile)
        assert sum(p.seconds for p in profile) > 0
        model.set_profiling(False)
        assert all(p.calls == 0 and p.seconds == 0 for p in model.kernel_profile())
    with rt3d_mlir.load(affine) as model:
        model.set_profiling(True)
        model(random_input())
        (p,) = model.kernel_profile()
        assert (p.name, p.calls, p.flops, p.dense_flops) == ("fc", 1, 2 * N, 4 * N)


def test_wrong_inputs_and_use_after_close(affine):
    model = rt3d_mlir.load(affine)
    with pytest.raises(ArtifactError, match=r"input has shape \(2, 3\)"):
        model(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ArtifactError, match="floating point"):
        model(np.zeros((1, N), dtype=np.int32))
    with pytest.raises(ArtifactError, match="out must be"):
        model(random_input(), out=np.empty((1, N), dtype=np.float64))
    model.close()
    model.close()
    with pytest.raises(ArtifactError, match="was closed"):
        model(random_input())


def test_device_selection(affine):
    devices = vulkan_devices()
    assert devices, "Vulkan (e.g. Mesa's lavapipe) must be installed: scripts/setup.sh"
    with rt3d_mlir.load(affine, device=0) as model:
        assert model.device_name == devices[0]
    word = devices[-1].split(" ")[0]
    with rt3d_mlir.load(affine, device=word.upper()) as model:  # part of the name, any case
        assert model.device_name == next(d for d in devices if word in d)
    for selector in ("nosuchdevice", len(devices)):
        with pytest.raises(ArtifactError, match=f"no Vulkan device matches '{selector}'.*0: ") as err:
            rt3d_mlir.load(affine, device=selector)
        assert devices[0] in str(err.value)
    with pytest.raises(ArtifactError, match="not a SPIR-V artifact"):
        rt3d_mlir.load(sys.executable, device=0)  # an ELF file: a device applies to nothing


def _mutate(m: dict, edit) -> dict:
    m = json.loads(json.dumps(m))
    edit(m)
    return m


MALFORMED = {
    "bad-version": (lambda m: m.update(version=1), "manifest version is 1; this runtime reads version 2"),
    "bad-format": (lambda m: m.update(format="onnx"), "manifest format is 'onnx'"),
    "unknown-kernel": (lambda m: m["dispatches"][0].update(kernel="conv9"), "unknown kernel 'conv9'"),
    "unknown-buffer": (lambda m: m["dispatches"][0].update(buffers=[0, 1, 7]), "unknown buffer 7"),
    "binding-count": (lambda m: m["dispatches"][0].update(buffers=[0, 1]), "binds 2 buffers, but kernel"),
    "missing-module": (lambda m: m["kernels"][0].update(module="kernels/gone.spv"), "lacks"),
    "weights-past-end": (lambda m: m["buffers"][1].update(offset=512), "past its end"),
    "missing-field": (lambda m: m["kernels"][0].pop("entry"), "kernels[0] has no 'entry'"),
    "bad-groups": (lambda m: m["dispatches"][0].update(groups=[1, 1]), "groups must be 3 integers"),
    "odd-size": (lambda m: m["buffers"][2].update(bytes=4 * N + 2), "multiple of 4"),
    "small-output": (lambda m: m["buffers"][2].update(bytes=8), "is 4000 bytes but buffer 2 has 8"),
    "large-output": (lambda m: m["buffers"][2].update(bytes=8000), "is 4000 bytes but buffer 2 has 8000"),
    "output-shape": (lambda m: m["output"].update(shape=[1, 2 * N]), "is 8000 bytes but buffer 2 has 4000"),
    # what the kernel reads and writes, from its SPIR-V module
    "shrunken-buffer": (
        lambda m: m["buffers"][1].update(bytes=400),
        "binds buffer 1 of 400 bytes to binding 1, where kernel 'affine_relu' accesses 4000 bytes",
    ),
    "wrong-buffer": (
        lambda m: (m["buffers"].append({"bytes": 40, "init": "none"}),
                   m["dispatches"][0].update(buffers=[0, 3, 2])),
        "binds buffer 3 of 40 bytes to binding 1",
    ),
    "grown-grid": (
        lambda m: m["dispatches"][0].update(groups=[100, 1, 1]),
        "launches a (100, 1, 1) grid, but kernel 'affine_relu' was built for (16, 1, 1)",
    ),
    "workgroup": (
        lambda m: m["kernels"][0].update(workgroup_size=[32, 1, 1]),
        "runs (64, 1, 1) invocations per workgroup, not (32, 1, 1)",
    ),
    "nan-flops": (lambda m: m["dispatches"][0].update(flops=float("nan")), "must be a finite number"),
    "huge-size": (lambda m: m["buffers"][0].update(bytes=1 << 80), "must be an integer in"),
    "wrong-entry": (lambda m: m["kernels"][0].update(entry="main"), "no GLCompute entry point 'main'"),
    "bad-precision": (lambda m: m.update(precision="int4"), "precision 'int4' is not one of fp32, fp16"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_manifest_is_a_clear_error(case, spirv, tmp_path):
    edit, message = MALFORMED[case]
    path = write_artifact(tmp_path / "bad.spv", _mutate(affine_manifest(), edit),
                          {"affine_relu": spirv["affine_relu"]}, affine_weights())
    with pytest.raises(ArtifactError, match="is not a valid SPIR-V artifact: ") as err:
        rt3d_mlir.load(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_broken_archives_and_modules(spirv, tmp_path):
    with zipfile.ZipFile(tmp_path / "nomanifest.spv", "w") as zf:
        zf.writestr("weights.bin", b"")
    with pytest.raises(ArtifactError, match=r"has no manifest\.json"):
        rt3d_mlir.load(tmp_path / "nomanifest.spv")
    with zipfile.ZipFile(tmp_path / "notjson.spv", "w") as zf:
        zf.writestr("manifest.json", "{format: rt3d-spirv")
    with pytest.raises(ArtifactError, match=r"manifest\.json is not valid JSON"):
        rt3d_mlir.load(tmp_path / "notjson.spv")
    truncated = tmp_path / "truncated.spv"
    truncated.write_bytes((tmp_path / "notjson.spv").read_bytes()[:40])
    with pytest.raises(ArtifactError, match=r"cannot read .* as a SPIR-V artifact"):
        rt3d_mlir.load(truncated)
    # A module that uses binding 3 of a kernel declared with 3 bindings (0 .. 2).
    four = assemble(kernel_asm("affine_relu", bindings=4), tmp_path)
    path = write_artifact(tmp_path / "bindings.spv", affine_manifest(), {"affine_relu": four},
                          affine_weights())
    with pytest.raises(ArtifactError, match="uses binding 3, but kernel 'affine_relu' declares 3 bindings"):
        rt3d_mlir.load(path)
    path = write_artifact(tmp_path / "garbage.spv", affine_manifest(), {"affine_relu": b"\0" * 64},
                          affine_weights())
    with pytest.raises(ArtifactError, match="bad magic number"):
        rt3d_mlir.load(path)
    # A module whose buffers have no size: nothing to check a manifest against.
    unsized = assemble(kernel_asm("affine_relu", unsized=True), tmp_path)
    path = write_artifact(tmp_path / "unsized.spv", affine_manifest(), {"affine_relu": unsized},
                          affine_weights())
    with pytest.raises(ArtifactError, match="declares an unsized buffer"):
        rt3d_mlir.load(path)


def test_modules_declare_only_capabilities_the_runtime_enables(spirv, tmp_path):
    # Float16 and 16-bit storage (fp16 builds) are enabled on the device where it offers them;
    # any other capability beyond Shader is refused before a device is touched
    text = kernel_asm("affine_relu").replace("OpCapability Shader", "OpCapability Shader\nOpCapability Int64")
    module = assemble(text, tmp_path)
    path = write_artifact(tmp_path / "i64.spv", affine_manifest(), {"affine_relu": module}, affine_weights())
    with pytest.raises(ArtifactError, match="declares SPIR-V capability 11, which this runtime cannot use"):
        rt3d_mlir.load(path)


def test_members_are_not_inflated_past_the_format_limits(spirv, tmp_path):
    """A small archive whose deflated members claim (or would expand to) huge sizes is refused unread."""
    bomb = tmp_path / "bomb.spv"
    huge = b"\0" * (spirv_artifact.MAX_MODULE_BYTES + 1)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(affine_manifest()))
        zf.writestr("kernels/affine_relu.spv", huge)
        zf.writestr("weights.bin", affine_weights())
    assert bomb.stat().st_size < len(huge) // 100
    with pytest.raises(ArtifactError, match="claims 16777217 bytes, more than the 16777216 allowed"):
        rt3d_mlir.load(bomb)
    manifest_bomb = tmp_path / "manifest-bomb.spv"
    with zipfile.ZipFile(manifest_bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b" " * (spirv_artifact.MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ArtifactError, match=r"manifest\.json claims"):
        rt3d_mlir.load(manifest_bomb)
    # Compressed weights: no more than the buffers need (plus alignment slack) is inflated.
    padded_weights = tmp_path / "weights-bomb.spv"
    with zipfile.ZipFile(padded_weights, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(affine_manifest()))
        zf.writestr("kernels/affine_relu.spv", spirv["affine_relu"])
        zf.writestr("weights.bin", affine_weights() + b"\0" * (64 << 20))
    with pytest.raises(ArtifactError, match=r"weights\.bin claims"):
        rt3d_mlir.load(padded_weights)


def test_robust_buffer_access_is_enabled_where_offered(affine):
    with rt3d_mlir.load(affine) as model:
        assert model.robust_buffer_access  # lavapipe offers it, as desktop GPUs do


def test_out_of_device_memory_is_a_clear_error_and_frees_what_was_made(affine, monkeypatch):
    import vulkan

    allocate, calls = vulkan.vkAllocateMemory, []

    def failing_allocate(*args):
        calls.append(args)
        if len(calls) == 3:  # two buffers exist by then: close() must free them
            raise vulkan.VkErrorOutOfDeviceMemory()
        return allocate(*args)

    monkeypatch.setattr(vulkan, "vkAllocateMemory", failing_allocate)
    with pytest.raises(ArtifactError, match=r"out of device memory on .* while allocating buffers"):
        rt3d_mlir.load(affine)
    monkeypatch.undo()
    with rt3d_mlir.load(affine) as model:  # the device is still usable
        model(random_input())


def test_missing_vulkan_package_is_a_clear_error(affine, monkeypatch):
    monkeypatch.setitem(sys.modules, "vulkan", None)  # as if the package (or libvulkan) were missing
    with pytest.raises(ArtifactError, match="'vulkan' Python package is not usable"):
        rt3d_mlir.load(affine)


def test_cli_runs_a_spirv_artifact(affine, tmp_path):
    x = random_input(5)
    np.save(tmp_path / "x.npy", x)
    result = run("rt3d-run", str(affine), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--device", "0", "--repeat", "2")
    assert result.returncode == 0, result.stderr
    assert f"over 2 run(s) on {vulkan_devices()[0]}" in result.stderr
    expected = np.maximum(x * WEIGHTS + np.float32(BIAS), 0)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6, atol=1e-7)


def test_cli_errors_are_one_line(affine, spirv, tmp_path):
    np.save(tmp_path / "x.npy", random_input())
    args = ("--input", str(tmp_path / "x.npy"))
    result = run("rt3d-run", str(affine), *args, "--device", "nosuchdevice")
    assert result.returncode == 1
    assert_one_line_error(result, "error: no Vulkan device matches 'nosuchdevice'", "available: 0: ")
    for variable in ("VK_ICD_FILENAMES", "VK_DRIVER_FILES"):  # the loader finds no driver
        result = run("rt3d-run", str(affine), *args, env={variable: "/nonexistent.json"})
        assert result.returncode == 1
        assert_one_line_error(result, "rt3d-run: error: no Vulkan device: install Mesa's lavapipe")
    bad = write_artifact(tmp_path / "bad.spv", _mutate(affine_manifest(), lambda m: m.update(version=9)),
                         {"affine_relu": spirv["affine_relu"]}, affine_weights())
    result = run("rt3d-run", str(bad), *args)
    assert result.returncode == 1
    assert_one_line_error(result, "is not a valid SPIR-V artifact: manifest version is 9")

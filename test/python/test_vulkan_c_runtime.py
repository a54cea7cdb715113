"""The C runtime for SPIR-V artifacts (rt3d_mlir/runtime/rt3d_vulkan.c), from C, on lavapipe.

``rt3d-compile --emit-vulkan-runtime`` builds ``librt3d_vulkan.so``; ``examples/classify_spirv.c``
is linked against it and run without Python. Its outputs are compared with the Python runtime's
on the hand-written artifacts of test_vulkan_runtime.py and on compiled models (fp32, fp16, int8),
and every hostile artifact of the Python runtime's tests goes through both: the same refusal, in
one line. On AArch64 the library and the example are cross-built and run under qemu-aarch64 with
Debian's arm64 lavapipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from test_vulkan_runtime import (
    GROUPS,
    KERNELS,
    MALFORMED,
    VECTOR,
    _mutate,
    affine_manifest,
    affine_weights,
    assemble,
    kernel_asm,
    manifest,
    random_input,
    write_artifact,
)
from torch import nn

import rt3d_mlir
from rt3d_mlir.backend import vulkan_runtime
from rt3d_mlir.contracts.spirv_artifact import MAX_MANIFEST_BYTES, MAX_MODULE_BYTES
from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.runtime import emulated
from rt3d_mlir.tools import compile as compile_tool

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "classify_spirv.c")
# where jansson refuses what Python's json reads and the manifest rules then refuse: the C message
C_MESSAGES = {
    "nan-flops": "manifest.json is not valid JSON",  # NaN is not JSON
    "huge-size": "manifest.json is not valid JSON: too big integer",  # 2^80
}


def _build(directory, target: str):
    """The library for ``target`` (through the CLI) and the example linked against it."""
    assert compile_tool.main(["--emit-vulkan-runtime", str(directory), "--target", target, "-q"]) == 0
    command = vulkan_runtime.compiler(target)
    multiarch = vulkan_runtime.MULTIARCH.get(target)
    extra = [f"-L{multiarch}", f"-Wl,-rpath-link,{multiarch}"] if multiarch else []
    program = directory / "classify_spirv"
    build = subprocess.run(
        [*command, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{directory}", EXAMPLE,
         f"-L{directory}", "-lrt3d_vulkan", "-o", str(program), f"-Wl,-rpath,{directory}", *extra],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    return program


@pytest.fixture(scope="module")
def host_program(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("vulkan-c-host"), "host")


@pytest.fixture(scope="module")
def spirv(tmp_path_factory) -> dict[str, bytes]:
    work = tmp_path_factory.mktemp("spirv-c")
    return {name: assemble(kernel_asm(name), work) for name in KERNELS}


def run_c(program, artifact, x: np.ndarray | None, tmp_path, *options: str, runner=()):
    """(exit status, stdout, stderr, output or None) of the example on ``artifact``."""
    clip, scores = tmp_path / "clip.f32", tmp_path / "scores.f32"
    if scores.exists():
        scores.unlink()
    if x is not None:
        x.astype(np.float32).tofile(clip)
    result = subprocess.run(
        [*runner, str(program), *options, str(artifact), str(clip) if x is not None else "-", str(scores)],
        capture_output=True, text=True, timeout=600,
    )
    output = np.fromfile(scores, dtype=np.float32) if scores.exists() else None
    return result.returncode, result.stdout, result.stderr, output


def test_the_library_needs_only_vulkan_jansson_minizip_and_libc(host_program):
    directory = host_program.parent
    names = sorted(os.listdir(directory))
    assert {"rt3d_vulkan.h", "rt3d_vulkan.c", vulkan_runtime.FORMAT_HEADER, vulkan_runtime.LIBRARY} <= set(
        names
    )
    assert (directory / vulkan_runtime.FORMAT_HEADER).read_text() == vulkan_runtime.format_header_text()
    needed = vulkan_runtime.library_dependencies(str(directory / vulkan_runtime.LIBRARY))
    assert set(needed) <= {"libvulkan.so.1", "libjansson.so.4", "libminizip.so.1", "libm.so.6", "libc.so.6"}
    assert {"libvulkan.so.1", "libjansson.so.4", "libminizip.so.1"} <= set(needed)
    assert not [n for n in names if n.endswith(".partial")]


@pytest.mark.parametrize("name", ["affine", "chain", "padded", "chunked"])
def test_outputs_equal_the_python_runtime(name, host_program, spirv, tmp_path, monkeypatch):
    if name == "affine":
        path = write_artifact(tmp_path / "a.spv", affine_manifest(), {"affine_relu": spirv["affine_relu"]},
                              affine_weights())
    elif name == "chain":
        dispatches = [{"kernel": "scale", "buffers": list(s), "groups": GROUPS}
                      for s in [(0, 1), (1, 2), (2, 1), (1, 3)]]
        path = write_artifact(tmp_path / "c.spv", manifest([VECTOR] * 4, ["scale"], dispatches, output=3),
                              {"scale": spirv["scale"]})
    elif name == "padded":
        buffers = [VECTOR, {"bytes": 4 * (1000 + 2), "init": "zero"}, VECTOR]
        dispatches = [{"kernel": "pad", "buffers": [0, 1], "groups": GROUPS},
                      {"kernel": "sum3", "buffers": [1, 2], "groups": GROUPS}]
        path = write_artifact(tmp_path / "p.spv", manifest(buffers, ["pad", "sum3"], dispatches, output=2),
                              {"pad": spirv["pad"], "sum3": spirv["sum3"]})
    else:  # more weights than the staging buffer: uploaded in several submissions, byte exact
        weights = np.random.default_rng(1).integers(0, 256, (80 << 20) + 4096, dtype=np.uint8).tobytes()
        buffers = [VECTOR, VECTOR, {"bytes": 80 << 20, "init": "weights", "offset": 4096}]
        m = manifest(buffers, ["scale"], [{"kernel": "scale", "buffers": [0, 1], "groups": GROUPS}], output=2)
        m["output"]["shape"] = [20 << 20]
        path = write_artifact(tmp_path / "w.spv", m, {"scale": spirv["scale"]}, weights)
    x = random_input(3)
    status, stdout, stderr, got = run_c(host_program, path, x, tmp_path)
    assert status == 0, stderr
    assert stdout.startswith("class ") and "device " in stderr
    with rt3d_mlir.load(path) as model:
        expected = model(x)
    assert got is not None and got.tobytes() == expected.tobytes()
    if name == "chunked":
        assert got.tobytes() == weights[4096:]


class Clip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv3d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv(x)))).mean(dim=(2, 3, 4)))


def _compiled(tmp_path, precision: str):
    from rt3d_mlir.quantization import calibrate

    torch.manual_seed(0)
    model, x = Clip().eval(), torch.randn(1, 3, 4, 10, 10)
    path = tmp_path / f"clip-{precision}.spv"
    scales = calibrate(model, [x]) if precision == "int8" else None
    rt3d_mlir.compile(model, x, output=path, target="spirv", precision=precision, int8_scales=scales)
    return path, x.numpy()


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_compiled_models_run_from_c_as_from_python(precision, host_program, tmp_path):
    """fp16 and int8 builds: the C runtime enables the device features their modules declare."""
    path, x = _compiled(tmp_path, precision)
    status, stdout, stderr, got = run_c(host_program, path, x, tmp_path)
    assert status == 0, stderr
    assert f"precision {precision}" in stderr
    with rt3d_mlir.load(path) as model:
        expected = model(x)
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)
    assert stdout.split()[1] == str(int(np.argmax(expected)))


def test_aarch64_cross_build_runs_under_qemu(tmp_path_factory, tmp_path):
    """Cross-built for AArch64 against Debian's arm64 libraries, run under qemu-aarch64 on arm64
    lavapipe (the dynamic loader and libraries come from multiarch, so no -L sysroot)."""
    program = _build(tmp_path_factory.mktemp("vulkan-c-aarch64"), "aarch64")
    path, x = _compiled(tmp_path, "fp32")
    status, _, stderr, got = run_c(program, path, x, tmp_path, runner=[emulated._qemu()])
    assert status == 0, stderr
    with rt3d_mlir.load(path) as model:
        expected = model(x)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)


def _refused(program, path, tmp_path, *options: str) -> str:
    status, stdout, stderr, got = run_c(program, path, random_input(), tmp_path, *options)
    assert status == 1 and got is None and stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("classify_spirv: error: "), stderr
    return lines[0]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_manifests_are_refused_as_by_the_python_runtime(case, host_program, spirv, tmp_path):
    edit, message = MALFORMED[case]
    path = write_artifact(tmp_path / "bad.spv", _mutate(affine_manifest(), edit),
                          {"affine_relu": spirv["affine_relu"]}, affine_weights())
    line = _refused(host_program, path, tmp_path)
    with pytest.raises(ArtifactError) as err:
        rt3d_mlir.load(path)
    if case in C_MESSAGES:
        assert C_MESSAGES[case] in line
    else:
        assert message in line
        assert line == f"classify_spirv: error: {err.value}"  # the same words


def _broken_artifacts(spirv, tmp_path) -> dict[str, tuple[str, str]]:
    """name -> (path, what the refusal says)"""
    cases = {}
    with zipfile.ZipFile(tmp_path / "nomanifest.spv", "w") as zf:
        zf.writestr("weights.bin", b"")
    cases["no-manifest"] = (tmp_path / "nomanifest.spv", "has no manifest.json")
    with zipfile.ZipFile(tmp_path / "notjson.spv", "w") as zf:
        zf.writestr("manifest.json", "{format: rt3d-spirv")
    cases["not-json"] = (tmp_path / "notjson.spv", "manifest.json is not valid JSON")
    truncated = tmp_path / "truncated.spv"
    truncated.write_bytes((tmp_path / "notjson.spv").read_bytes()[:40])
    cases["truncated"] = (truncated, "as a SPIR-V artifact (a ZIP archive)")
    four = assemble(kernel_asm("affine_relu", bindings=4), tmp_path)
    cases["binding-past-count"] = (
        write_artifact(tmp_path / "bindings.spv", affine_manifest(), {"affine_relu": four}, affine_weights()),
        "uses binding 3, but kernel 'affine_relu' declares 3 bindings",
    )
    cases["garbage-module"] = (
        write_artifact(tmp_path / "garbage.spv", affine_manifest(), {"affine_relu": b"\0" * 64},
                       affine_weights()),
        "bad magic number",
    )
    unsized = assemble(kernel_asm("affine_relu", unsized=True), tmp_path)
    cases["unsized"] = (
        write_artifact(tmp_path / "unsized.spv", affine_manifest(), {"affine_relu": unsized},
                       affine_weights()),
        "declares an unsized buffer",
    )
    text = kernel_asm("affine_relu").replace("OpCapability Shader", "OpCapability Shader\nOpCapability Int64")
    cases["capability"] = (
        write_artifact(tmp_path / "i64.spv", affine_manifest(), {"affine_relu": assemble(text, tmp_path)},
                       affine_weights()),
        "declares SPIR-V capability 11, which this runtime cannot use",
    )
    # an instruction of one word at the very end (an OpTypeStruct without its result id)
    cut = spirv["affine_relu"] + np.array([(1 << 16) | 30], dtype="<u4").tobytes()
    wrong_entry = affine_manifest()
    wrong_entry["kernels"][0]["entry"] = "main"
    cases["one-word-struct"] = (
        write_artifact(tmp_path / "cut.spv", wrong_entry, {"affine_relu": cut}, affine_weights()),
        "has no GLCompute entry point 'main' (it has affine_relu)",
    )
    bomb = tmp_path / "bomb.spv"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(affine_manifest()))
        zf.writestr("kernels/affine_relu.spv", b"\0" * (MAX_MODULE_BYTES + 1))
        zf.writestr("weights.bin", affine_weights())
    cases["module-bomb"] = (bomb, "claims 16777217 bytes, more than the 16777216 allowed")
    manifest_bomb = tmp_path / "manifest-bomb.spv"
    with zipfile.ZipFile(manifest_bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b" " * (MAX_MANIFEST_BYTES + 1))
    cases["manifest-bomb"] = (manifest_bomb, "manifest.json claims")
    weights_bomb = tmp_path / "weights-bomb.spv"
    with zipfile.ZipFile(weights_bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(affine_manifest()))
        zf.writestr("kernels/affine_relu.spv", spirv["affine_relu"])
        zf.writestr("weights.bin", affine_weights() + b"\0" * (64 << 20))
    cases["weights-bomb"] = (weights_bomb, "weights.bin claims")
    # a member marked encrypted (general purpose flag bit 0, in its local and central headers)
    encrypted = tmp_path / "encrypted.spv"
    write_artifact(encrypted, affine_manifest(), {"affine_relu": spirv["affine_relu"]}, affine_weights())
    data = bytearray(encrypted.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)  # the first member: manifest.json
        data[start + flag_at] |= 1
    encrypted.write_bytes(bytes(data))
    cases["encrypted"] = (encrypted, "encrypted")
    return cases


def test_broken_archives_and_modules_are_refused_as_by_the_python_runtime(host_program, spirv, tmp_path):
    for name, (path, message) in _broken_artifacts(spirv, tmp_path).items():
        line = _refused(host_program, path, tmp_path)
        assert message in line, (name, line)
        with pytest.raises(ArtifactError) as err:
            rt3d_mlir.load(path)
        assert message in str(err.value) and "\n" not in str(err.value), name


def test_device_selection_and_missing_files(host_program, spirv, tmp_path):
    path = write_artifact(tmp_path / "a.spv", affine_manifest(), {"affine_relu": spirv["affine_relu"]},
                          affine_weights())
    status, _, stderr, _ = run_c(host_program, path, random_input(), tmp_path, "-d", "0")
    assert status == 0, stderr
    status, _, stderr, _ = run_c(host_program, path, random_input(), tmp_path, "-d", "LLVMPIPE")
    assert status == 0 and "llvmpipe" in stderr
    line = _refused(host_program, path, tmp_path, "-d", "no-such-gpu")
    assert "no Vulkan device matches 'no-such-gpu' (available: 0: " in line
    with pytest.raises(ArtifactError, match="no Vulkan device matches 'no-such-gpu'"):
        rt3d_mlir.load(path, device="no-such-gpu")
    line = _refused(host_program, tmp_path / "missing.spv", tmp_path)
    assert line.endswith(f"artifact '{tmp_path / 'missing.spv'}' does not exist")
    status, _, stderr, _ = run_c(host_program, path, np.zeros(7, np.float32), tmp_path)
    assert status == 1 and "is not 1000 float32 values" in stderr


def test_emit_vulkan_runtime_errors_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert compile_tool.main(["--emit-vulkan-runtime", str(blocker), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rt3d-compile: error: ") and "is not a directory" in err
    with pytest.raises(Exception, match="runs on a CPU"):
        vulkan_runtime.compiler("spirv")
    args = ["--emit-vulkan-runtime", str(tmp_path / "rt"), "--target", "spirv", "-q"]
    assert compile_tool.main(args) == 0
    assert (tmp_path / "rt" / vulkan_runtime.LIBRARY).exists()  # spirv models run on the host's CPU


_REPLACEMENTS = [-1, 0, 1, 3, 4, 17, 1 << 31, 1 << 40, "", "x", "none", None, [], {}, [1, 1, 1], [16, 1, 1],
                 1.5, True, False]


def _paths(value, prefix=()):
    """Every place in a JSON value: (path, value) pairs, the root first."""
    yield prefix, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


def test_random_manifest_edits_get_the_same_verdict_and_words_from_both(host_program, spirv, tmp_path):
    """Replace or delete one value anywhere in a valid manifest, 80 times: the C and the Python
    runtimes accept the same manifests (and then compute the same output) and refuse the others
    with the same line; the C runtime never crashes."""
    rng = np.random.default_rng(16)
    base = affine_manifest()
    places = [p for p, _ in _paths(base) if p]
    x = random_input(5)
    verdicts = {"accepted": 0, "refused": 0}
    for case in range(80):
        edited = json.loads(json.dumps(base))
        place = places[rng.integers(len(places))]
        parent = edited
        for key in place[:-1]:
            parent = parent[key]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[place[-1]]
        else:
            parent[place[-1]] = _REPLACEMENTS[rng.integers(len(_REPLACEMENTS))]
        path = write_artifact(tmp_path / f"edit{case}.spv", edited, {"affine_relu": spirv["affine_relu"]},
                              affine_weights())
        status, _, stderr, got = run_c(host_program, path, x, tmp_path)
        assert status in (0, 1), (place, stderr)  # never a signal
        try:
            with rt3d_mlir.load(path) as model:
                expected = model(x)
        except ArtifactError as err:
            assert status == 1, (place, "C accepted what Python refused", str(err))
            assert stderr.strip() == f"classify_spirv: error: {err}", place
            verdicts["refused"] += 1
        else:
            assert status == 0, (place, stderr)
            assert got.tobytes() == expected.tobytes()
            verdicts["accepted"] += 1
    assert verdicts["accepted"] >= 2 and verdicts["refused"] >= 40, verdicts  # both kinds occur

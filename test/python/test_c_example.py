"""The artifact ABI from C: the header rt3d-compile writes, and examples/classify.c built against an
artifact and run without Python, on the host and (cross-built) under qemu-aarch64."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import rt3d_mlir
from rt3d_mlir.backend.abi import header_text
from rt3d_mlir.contracts.shared_object import ABI_VERSION, EXPORTED_SYMBOLS
from rt3d_mlir.runtime import emulated
from rt3d_mlir.tools import compile as compile_tool

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "classify.c")


class Clip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


def test_the_header_declares_every_exported_symbol_and_the_version():
    text = header_text()
    assert f"#define RT3D_ABI_VERSION {ABI_VERSION}u" in text
    for name in EXPORTED_SYMBOLS:
        assert f" {name}(" in text or f"*{name}(" in text


def test_emit_header_writes_it_without_a_model(tmp_path, capsys):
    path = tmp_path / "rt3d.h"
    assert compile_tool.main(["--emit-header", str(path), "-q"]) == 0
    assert path.read_text() == header_text()
    with pytest.raises(SystemExit) as exit_info:
        compile_tool.main(["-q"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: model" in capsys.readouterr().err


def _c_compiler(target: str) -> list[str]:
    if target == "aarch64":
        return emulated._cross_compiler()
    return [shutil.which("clang-22") or shutil.which("cc") or "cc"]


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_the_c_example_prints_the_top_class(target, tmp_path):
    torch.manual_seed(0)
    model = Clip().eval()
    x = torch.randn(1, 3, 4, 10, 10)
    artifact = tmp_path / "model.so"
    rt3d_mlir.compile(model, x, output=artifact, target=target)
    assert compile_tool.main(["--emit-header", str(tmp_path / "rt3d.h"), "-q"]) == 0
    program = tmp_path / "classify"
    build = subprocess.run(
        [*_c_compiler(target), "-O2", "-std=c99", "-Wall", "-Werror", f"-I{tmp_path}", EXAMPLE,
         str(artifact), "-o", str(program), f"-Wl,-rpath,{tmp_path}"],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    run = [str(program)]
    if target == "aarch64":
        run = [*emulated.qemu_command(), str(program)]
    clip = tmp_path / "clip.f32"
    x.numpy().astype(np.float32).tofile(clip)
    result = subprocess.run([*run, str(clip), "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    scores = rt3d_mlir.load(artifact)(x.numpy())[0]
    label, best, _, value = result.stdout.split()
    assert label == "class" and int(best) == int(np.argmax(scores))
    assert float(value) == pytest.approx(float(scores[int(best)]), rel=1e-5, abs=1e-6)
    # a clip of the wrong size: one line, exit 1
    (tmp_path / "short.f32").write_bytes(b"\0" * 8)
    bad = subprocess.run([*run, str(tmp_path / "short.f32")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "is not" in bad.stderr


def test_the_artifacts_bf16_rounding_is_torchs(tmp_path):
    """The __truncsfbf2 an artifact defines where the CPU cannot round f32 to bf16 (abi.py) rounds as
    torch does: to nearest even, infinities kept, NaNs quiet."""
    import ctypes

    from rt3d_mlir.backend.abi import _BF16_ROUNDING
    from rt3d_mlir.backend.cpu import require_toolchain
    from rt3d_mlir.targets import get_target

    clang = require_toolchain(get_target("host")).clang
    source, library = tmp_path / "round.c", tmp_path / "round.so"
    source.write_text("#include <stdint.h>\n" + _BF16_ROUNDING + """
uint16_t round_bits(float value) {
  __bf16 rounded = __truncsfbf2(value);
  uint16_t bits;
  memcpy(&bits, &rounded, sizeof bits);
  return bits;
}
""")
    subprocess.run([clang, "-O2", "-shared", "-fPIC", "-Wall", "-Werror", str(source), "-o", str(library)],
                   check=True)
    round_bits = ctypes.CDLL(str(library)).round_bits
    round_bits.argtypes, round_bits.restype = [ctypes.c_float], ctypes.c_uint16
    ties = np.array([0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF], np.uint32).view(np.float32)
    values = np.concatenate([
        np.random.default_rng(0).standard_normal(2000).astype(np.float32) * 1e3, ties,
        np.array([0.0, -0.0, np.inf, -np.inf, 1e-40, -1e-40, 3.4028235e38], np.float32),
    ])
    want = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    got = np.array([round_bits(float(v)) for v in values], np.uint16)
    assert np.array_equal(got, want)
    nan = round_bits(float("nan"))
    assert nan & 0x7F80 == 0x7F80 and nan & 0x7F and nan & 0x40  # a quiet NaN

"""The command-line tools: exit codes, one-line errors, no partial outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REL_TOL, relative_error, torch_output
from torch import nn

from rt3d_mlir.frontend import save_checkpoint
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks

BIN = os.path.dirname(sys.executable)



def run(tool: str, *args: str, env: dict | None = None, stdin: str | None = None):
    full_env = dict(os.environ)
    full_env.pop("RT3D_DEBUG", None)
    full_env.update(env or {})
    return subprocess.run(
        [os.path.join(BIN, tool), *args], capture_output=True, text=True, env=full_env, input=stdin
    )


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    model = build_model("c3d", width=1 / 16, input_size=(16, 16, 16)).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=9)
    path = tmp_path_factory.mktemp("models") / "c3d.pt"
    save_checkpoint(path, "c3d", {"width": 1 / 16, "input_size": (16, 16, 16)}, model)
    return model, path


def test_compile_and_run_from_the_shell(tiny_model_file, tmp_path):
    model, path = tiny_model_file
    out = tmp_path / "c3d.so"
    result = run("rt3d-compile", str(path), "-o", str(out), "--group-shape", "4x4")
    assert result.returncode == 0, result.stderr
    x = torch.randn(1, 3, 16, 16, 16)
    np.save(tmp_path / "x.npy", x.numpy())
    result = run("rt3d-run", str(out), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--repeat", "2", "--threads", "2")
    assert result.returncode == 0, result.stderr
    assert "median latency" in result.stderr
    assert "on 2 thread(s)" in result.stderr
    y = np.load(tmp_path / "y.npy")
    assert relative_error(y, torch_output(model, x)) <= REL_TOL
    result = run("rt3d-run", str(out), "--input", str(tmp_path / "x.npy"), "--threads", "0")
    assert result.returncode == 2
    assert_one_line_error(result, "rt3d-run: error: argument --threads: must be between 1 and")


def _no_partial_outputs(directory) -> None:
    leftovers = [p for p in os.listdir(directory) if p.endswith((".so", ".partial"))]
    assert leftovers == [], leftovers


def test_missing_model_file(tmp_path):
    result = run("rt3d-compile", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "does not exist")
    _no_partial_outputs(tmp_path)


def test_truncated_model_file(tiny_model_file, tmp_path):
    _, path = tiny_model_file
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    result = run("rt3d-compile", str(bad), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "cannot read", "truncated.pt")
    _no_partial_outputs(tmp_path)


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    result = run("rt3d-compile", str(bad), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "cannot read")
    _no_partial_outputs(tmp_path)


def test_unsupported_operator_names_the_op(tmp_path):
    class Sorting(nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1).values  # imported as tm_tensor.sort, which no target takes

    path = tmp_path / "sort.pt2"
    torch.export.save(torch.export.export(Sorting(), (torch.randn(1, 4, 4, 8, 8),)), path)
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "unsupported operator 'tm_tensor.sort'", "test_cli.py")
    _no_partial_outputs(tmp_path)


def test_pickled_module_whose_class_is_gone(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "orphan_net_rt3d.py").write_text(
        "import torch\nclass Net(torch.nn.Conv3d):\n    pass\n"
    )
    path = tmp_path / "orphan.pt"
    subprocess.run(
        [sys.executable, "-c",
         f"import torch, orphan_net_rt3d; torch.save(orphan_net_rt3d.Net(3, 4, 3), {str(path)!r})"],
        cwd=source, check=True,
    )
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--trust-pickle")
    assert_one_line_error(result, "needs Python module 'orphan_net_rt3d'")


def test_model_torch_export_cannot_trace_is_one_line(tmp_path):
    """torch.export's failure (and the log records torch writes while failing) become one line."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "datadep_net_rt3d.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n"
        "    def forward(self, x):\n        return x * 2 if x.sum() > 0 else x\n"
    )
    path = tmp_path / "datadep.pt"
    subprocess.run(
        [sys.executable, "-c", f"import torch, datadep_net_rt3d as m; torch.save(m.Net(), {str(path)!r})"],
        cwd=source, check=True,
    )
    options = ("--input-shape", "1,3,2,4,4", "--trust-pickle")
    env = {"PYTHONPATH": str(source)}
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), *options, env=env)
    assert_one_line_error(result, "cannot export the model with torch.export", "data-dependent")
    _no_partial_outputs(tmp_path)


def test_input_shape_of_wrong_rank(tiny_model_file, tmp_path):
    _, path = tiny_model_file
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--input-shape", "1,3,16")
    assert_one_line_error(result, "5 dimensions", "got 3")
    _no_partial_outputs(tmp_path)


def test_missing_toolchain_says_what_to_install(tiny_model_file, tmp_path):
    _, path = tiny_model_file
    empty = tmp_path / "no-tools"
    empty.mkdir()
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"),
                 env={"RT3D_TOOL_PATH": str(empty)})
    assert_one_line_error(result, "mlir-translate-22", "apt-get install mlir-22-tools")
    _no_partial_outputs(tmp_path)


def test_unknown_target_and_bad_group_shape(tiny_model_file, tmp_path):
    _, path = tiny_model_file
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--target", "tpu")
    assert_one_line_error(result, "unknown target 'tpu'")
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--group-shape", "4")
    assert_one_line_error(result, "group shape")
    _no_partial_outputs(tmp_path)


def test_usage_errors_are_one_line():
    result = run("rt3d-compile")
    assert result.returncode == 2
    assert_one_line_error(result, "required")


def test_run_errors(tmp_path):
    result = run("rt3d-run", str(tmp_path / "nothing.so"), "--input", "x.npy")
    assert_one_line_error(result, "does not exist")
    fake = tmp_path / "fake.so"
    fake.write_text("not an ELF file")
    result = run("rt3d-run", str(fake), "--input", "x.npy")
    assert_one_line_error(result, "not a compiled rt3d artifact")


def test_run_rejects_wrong_input(tiny_model_file, tmp_path):
    _, path = tiny_model_file
    out = tmp_path / "m.so"
    assert run("rt3d-compile", str(path), "-o", str(out), "-q").returncode == 0
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 8, 8, 8), np.float32))
    result = run("rt3d-run", str(out), "--input", str(tmp_path / "wrong.npy"), "--output",
                 str(tmp_path / "y.npy"))
    assert_one_line_error(result, "compiled for (1, 3, 16, 16, 16)")
    assert not (tmp_path / "y.npy").exists()
    (tmp_path / "bad.npy").write_text("garbage")
    result = run("rt3d-run", str(out), "--input", str(tmp_path / "bad.npy"))
    assert_one_line_error(result, "cannot read")


def test_opt_runs_pipelines_and_reports_errors(tmp_path):
    source = """
func.func @f(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""
    result = run("rt3d-opt", "-", "--pass-pipeline=builtin.module(canonicalize,cse)", stdin=source)
    assert result.returncode == 0 and "arith.addf" in result.stdout
    result = run("rt3d-opt", "-", "--pass-pipeline=builtin.module(no-such-pass)", stdin=source)
    assert_one_line_error(result, "no-such-pass")
    result = run("rt3d-opt", "-", "--pass-pipeline=builtin.module(rt3d-recognize-kgs{color=red})",
                 stdin=source)
    assert_one_line_error(result, "has no option 'color'")
    result = run("rt3d-opt", "-", "--pass-pipeline=builtin.module(rt3d-recognize-kgs", stdin=source)
    assert_one_line_error(result, "unbalanced")
    result = run("rt3d-opt", "-", stdin="func.func @f( {")
    assert result.returncode == 1 and "error:" in result.stderr
    result = run("rt3d-opt", str(tmp_path / "missing.mlir"))
    assert_one_line_error(result, "cannot read")
    result = run("rt3d-opt", "--list-passes")
    assert "rt3d-recognize-kgs" in result.stdout and "rt3d-lower-kgs-to-linalg" in result.stdout

"""Hostile and broken inputs (docs/security.md): no code runs unasked, artifacts are checked
before they are mapped, outputs never clobber anything, interrupts leave nothing behind, and
every user mistake is one line."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from contextlib import redirect_stderr

import numpy as np
import pytest
import torch
from conftest import REL_TOL, relative_error, torch_output
from test_cli import BIN, assert_one_line_error, run
from torch import nn

import rt3d_mlir
from rt3d_mlir.backend.cpu import require_toolchain
from rt3d_mlir.backend.cpu_features import cpu_features
from rt3d_mlir.backend.targets import get_target
from rt3d_mlir.contracts.shared_object import ABI_VERSION, EXPORTED_SYMBOLS, INFO_SECTION
from rt3d_mlir.errors import ArtifactError, ModelLoadError
from rt3d_mlir.fileio import OutputError, atomic_output, seal, write_bytes
from rt3d_mlir.frontend import save_checkpoint
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.pruning.job import STATE_FILE
from rt3d_mlir.runtime.elf import cpu_features as host_cpu_features

C3D_KWARGS = {"width": 1 / 16, "input_size": [16, 16, 16]}
SHAPE = (1, 3, 16, 16, 16)


class RunsCode:
    """Unpickling this creates a marker file: proof that a loader ran code from a file."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = build_model("c3d", **C3D_KWARGS).eval()
    apply_random_masks(model, (4, 4), 0.4, "kgs", seed=2)
    path = tmp_path_factory.mktemp("ckpt") / "c3d.pt"
    save_checkpoint(path, "c3d", C3D_KWARGS, model, sparsity={"scheme": "kgs", "group_shape": [4, 4]})
    return model, path


@pytest.fixture(scope="module")
def artifact(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("so") / "c3d.so"
    rt3d_mlir.compile(str(checkpoint[1]), output=out)
    return out


# ----------------------------------------------------------------- code must not run unasked


def test_compile_refuses_pickled_code_unless_trusted(checkpoint, tmp_path):
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.pt"
    torch.save({"weights": RunsCode(marker)}, hostile)
    result = run("rt3d-compile", str(hostile), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "unpickling can run code", "--trust-pickle")
    assert not marker.exists() and not (tmp_path / "m.so").exists()

    model, _ = checkpoint
    pickled = tmp_path / "module.pt"
    torch.save(model, pickled)
    result = run("rt3d-compile", str(pickled), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "is a pickled Python object (rt3d_mlir.models.c3d.C3D)", "--trust-pickle")
    result = run("rt3d-compile", str(pickled), "-o", str(tmp_path / "m.so"), "--trust-pickle", "-q")
    assert result.returncode == 0, result.stderr
    x = torch.randn(*SHAPE)
    assert relative_error(rt3d_mlir.load(tmp_path / "m.so")(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_prune_dense_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "ran"
    hostile = tmp_path / "dense.pt"
    payload = {"format": "rt3d-checkpoint", "version": 1, "arch": "c3d", "kwargs": RunsCode(marker)}
    torch.save(payload, hostile)
    result = run("rt3d-prune", "--dense", str(hostile), "--flops-reduction", "2",
                 "--data-option", "samples=8", "-o", str(tmp_path / "out.pt"))
    assert_one_line_error(result, "unpickling can run code")
    assert not marker.exists()


def _state_dir(tmp_path):
    work = tmp_path / "out.pt.work"
    work.mkdir()
    return work / STATE_FILE


PRUNE_ARGS = ["--width", "0.125", "--data-option", "samples=8", "--data-option", "val_samples=8",
              "--flops-reduction", "2", "--dense-epochs", "1", "--reweight-epochs", "0",
              "--retrain-epochs", "0", "--workers", "0", "--batch-size", "4"]


def test_resume_state_runs_no_code_and_corruption_is_detected(tmp_path):
    marker = tmp_path / "ran"
    state = _state_dir(tmp_path)
    buffer = io.BytesIO()
    torch.save({"phase": "dense", "history": RunsCode(marker)}, buffer)
    state.write_bytes(seal(buffer.getvalue()))  # a valid checksum over a hostile payload
    result = run("rt3d-prune", *PRUNE_ARGS, "-o", str(tmp_path / "out.pt"))
    assert_one_line_error(result, "cannot resume", str(state), "--restart")
    assert not marker.exists()

    # A real state, then one flipped byte: refused by the checksum, with the way out.
    result = run("rt3d-prune", *PRUNE_ARGS, "-o", str(tmp_path / "out.pt"), "--restart")
    assert result.returncode == 0, result.stderr
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0x01
    state.write_bytes(bytes(data))
    result = run("rt3d-prune", *PRUNE_ARGS, "-o", str(tmp_path / "out.pt"))
    assert_one_line_error(result, "is corrupt (its SHA-256 checksum does not match)", "--restart")
    result = run("rt3d-prune", *PRUNE_ARGS, "-o", str(tmp_path / "out.pt"), "--restart")
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------- artifacts are data until verified


def test_truncated_artifact_is_refused_before_mapping(artifact, tmp_path):
    data = artifact.read_bytes()
    for cut in (100, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.so"
        bad.write_bytes(data[:cut])
        with pytest.raises(ArtifactError, match=r"not a valid shared object|not a compiled rt3d artifact"):
            rt3d_mlir.load(bad)
        np.save(tmp_path / "x.npy", np.zeros(SHAPE, np.float32))
        result = run("rt3d-run", str(bad), "--input", str(tmp_path / "x.npy"))
        assert_one_line_error(result, str(bad))  # no SIGBUS, no traceback


def test_foreign_library_never_runs_its_constructors(tmp_path):
    marker = tmp_path / "constructed"
    source = tmp_path / "foreign.c"
    exported = "\n".join(f"int {name}(void) {{ return 0; }}" for name in EXPORTED_SYMBOLS)
    source.write_text(
        "#include <stdio.h>\n"
        f'__attribute__((constructor)) static void evil(void) {{ fclose(fopen("{marker}", "w")); }}\n'
        + exported
    )
    library = tmp_path / "foreign.so"
    subprocess.run(["gcc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    with pytest.raises(ArtifactError, match=rf"has no \{INFO_SECTION} record"):
        rt3d_mlir.load(library)
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    if os.path.exists(libm):
        with pytest.raises(ArtifactError, match="does not export rt3d_abi_version"):
            rt3d_mlir.load(libm)
    assert not marker.exists()


def test_artifact_for_missing_cpu_features_is_refused(artifact, tmp_path):
    # The record names what the code needs; an artifact needing a feature this CPU lacks is refused.
    data = artifact.read_bytes()
    start = data.index(b'{"format":"rt3d-shared-object"')
    record = data[start : data.index(b"\0", start)]
    info = json.loads(record)
    assert info["abi"] == ABI_VERSION and info["target"] == "host" and info["features"]
    first = info["features"][0].encode()
    forged = record.replace(b'"' + first + b'"', b'"' + b"z" * len(first) + b'"', 1)
    patched = tmp_path / "forged.so"
    patched.write_bytes(data.replace(record, forged, 1))
    with pytest.raises(ArtifactError, match=f"uses {'z' * len(first)}, which this CPU lacks.*--cpu native"):
        rt3d_mlir.load(patched)
    # A real build for a newer CPU than this one (when this machine lacks one of their features).
    toolchain = require_toolchain(get_target("host"))
    have = host_cpu_features() or set()
    newer = next(
        (cpu for cpu in ("znver4", "sapphirerapids", "graniterapids")
         if not set(cpu_features(toolchain.clang, toolchain.target, cpu)[1]) <= have),
        None,
    )
    if newer is not None:
        model = nn.Sequential(nn.Conv3d(3, 4, 3)).eval()
        out = tmp_path / "newer.so"
        rt3d_mlir.compile(model, torch.randn(1, 3, 4, 8, 8), output=out, cpu=newer)
        expected = f"compiled for CPU '{newer}' and uses .* which this CPU lacks"
        with pytest.raises(ArtifactError, match=expected):
            rt3d_mlir.load(out)


def test_thread_counts_are_bounded(artifact, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(SHAPE, np.float32))
    for value in ("99999999999", "-1", "0", "nan"):
        result = run("rt3d-run", str(artifact), "--input", str(tmp_path / "x.npy"), "--threads", value)
        assert result.returncode == 2
        assert_one_line_error(result, "argument --threads")
    for value in (1 << 40, 0, -3, 2.5, True):
        with pytest.raises(ArtifactError, match="thread count must be"):
            rt3d_mlir.load(artifact, threads=value)


# ----------------------------------------------------------------- output files


def test_outputs_that_are_not_regular_files_are_refused(checkpoint, tmp_path):
    _, path = checkpoint
    target_dir = tmp_path / "adir"
    target_dir.mkdir()
    fifo = tmp_path / "pipe.so"
    os.mkfifo(fifo)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "link.so"
    link.symlink_to(victim)
    for output, message in (
        (target_dir, "is a directory"),
        (fifo, "is not a regular file"),
        (link, "is a symbolic link"),
        (tmp_path / "missing" / "m.so", "does not exist"),
        ("/proc/rt3d-output.so", "cannot create a file in '/proc'"),
    ):
        result = run("rt3d-compile", str(path), "-o", str(output))
        assert_one_line_error(result, message)
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--keep-intermediates", str(victim))
    assert_one_line_error(result, "exists and is not a directory")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.path.islink(link)
    assert victim.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["adir", "link.so", "pipe.so", "victim.txt"]
    for tool, args, message in (
        ("rt3d-run", ["nothing.so", "--input", "x.npy", "--output", str(target_dir)], "is a directory"),
        ("rt3d-opt", ["-", "-o", str(fifo)], "is not a regular file"),
        ("rt3d-prune", ["--flops-reduction", "2", "-o", str(target_dir)], "is a directory"),
        ("rt3d-prune", ["--flops-reduction", "2", "-o", str(tmp_path / "p.pt"), "--report", str(link)],
         "is a symbolic link"),
        ("rt3d-bench", ["--json", str(target_dir)], "is a directory"),
    ):
        result = run(tool, *args, stdin="")
        assert_one_line_error(result, message)
    assert sorted(os.listdir(tmp_path)) == ["adir", "link.so", "pipe.so", "victim.txt"]


def test_temporary_file_never_follows_a_planted_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = tmp_path / ".out.bin.PLANTED.partial"
    planted.symlink_to(victim)
    names = iter(["PLANTED", "fresh"])
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: names)
    write_bytes(tmp_path / "out.bin", b"new data")
    assert (tmp_path / "out.bin").read_bytes() == b"new data"
    assert victim.read_text() == "keep me" and planted.is_symlink()
    assert oct((tmp_path / "out.bin").stat().st_mode & 0o777) != "0o600"  # usual permissions, not mkstemp's
    with pytest.raises(OutputError, match="is a directory"), atomic_output(tmp_path):
        pass


def _leftovers(*directories) -> list[str]:
    return sorted(name for directory in directories for name in os.listdir(directory))


def _running(fragment: str) -> list[str]:
    result = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if fragment in line and "ps -eo" not in line]


def _kill_running(fragment: str) -> None:
    result = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if fragment in args and "ps -eo" not in args:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_inside_an_mlir_callback_still_ends_the_tool_as_a_signal(sig, capsys):
    """A signal landing while MLIR calls back into Python (a walk, a pass, a diagnostic handler)
    reaches the tool wrapped in a RuntimeError; it still exits as that signal, in one line."""
    from torch_mlir import ir

    from rt3d_mlir.tools.cli import run_tool

    def body() -> None:
        with ir.Context():
            module = ir.Module.parse("module { func.func @f() { return } }")

            def visit(_op: ir.Operation) -> ir.WalkResult:
                os.kill(os.getpid(), sig)
                time.sleep(1)  # the handler raises here, inside the callback
                return ir.WalkResult.ADVANCE

            module.operation.walk(visit)

    expected = {signal.SIGTERM: "t: terminated (SIGTERM)\n", signal.SIGINT: "t: interrupted\n"}[sig]
    assert run_tool("t", body) == 128 + sig
    assert capsys.readouterr().err == expected


class _SignalledWhenCollected:
    """Sends ``sig`` to this process from its finalizer and waits there, so that the handler's
    exception is raised inside ``__del__``, where Python can only print it."""

    def __init__(self, sig: int) -> None:
        self.sig = sig

    def __del__(self) -> None:
        os.kill(os.getpid(), self.sig)
        time.sleep(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_inside_a_finalizer_still_ends_the_tool_as_a_signal(sig, capsys):
    """A signal whose exception is raised inside a finalizer (torch.export runs many) would be
    printed and dropped by Python (silently, under a redirected stderr): it is delivered again and
    ends the tool as that signal, in one line, before the body goes on."""
    from rt3d_mlir.tools.cli import run_tool

    went_on = []

    def body() -> None:
        with redirect_stderr(io.StringIO()):  # as the importer's quiet mode does
            _SignalledWhenCollected(sig)  # collected at once: the signal lands in __del__
            for _ in range(100):
                time.sleep(0.01)
        went_on.append(True)

    expected = {signal.SIGTERM: "t: terminated (SIGTERM)\n", signal.SIGINT: "t: interrupted\n"}[sig]
    assert run_tool("t", body) == 128 + sig
    assert capsys.readouterr().err == expected
    assert went_on == []


def test_a_signal_lost_as_a_tool_returns_is_not_raised_after_it():
    """The signal is delivered again only while the tool runs: one lost in a finalizer just as the
    body returns does not raise in the caller afterwards."""
    from rt3d_mlir.tools.cli import run_tool

    def body() -> None:
        with redirect_stderr(io.StringIO()):
            _SignalledWhenCollected(signal.SIGINT)

    assert run_tool("t", body) == 0
    time.sleep(0.2)  # a late redelivery would raise KeyboardInterrupt here


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_swallowed_signal_ends_the_tool_at_its_next_step(sig, capsys):
    """A library that catches the signal's exception and carries on (``except BaseException``)
    does not make the tool finish its work: the next step raises it again."""
    from rt3d_mlir.tools.cli import raise_pending_signal, run_tool

    steps = []

    def body() -> None:
        try:
            os.kill(os.getpid(), sig)
            time.sleep(1)
        except BaseException:  # what the swallowing library does
            pass
        for step in ("import", "lower"):
            raise_pending_signal()
            steps.append(step)

    expected = {signal.SIGTERM: "t: terminated (SIGTERM)\n", signal.SIGINT: "t: interrupted\n"}[sig]
    assert run_tool("t", body) == 128 + sig
    assert capsys.readouterr().err == expected
    assert steps == []


@pytest.mark.parametrize(
    "step, sig",
    [
        ("import", signal.SIGINT),
        ("sparse convolutions", signal.SIGTERM),
        ("bufferize", signal.SIGINT),
        ("compile and link", signal.SIGTERM),
        ("compile and link", signal.SIGINT),
    ],
)
def test_interrupt_at_any_stage_leaves_nothing(checkpoint, tmp_path, step, sig):
    """Ctrl-C or SIGTERM at any step: exit 128+signal, one line, no output, no temporaries, no child
    left running. The link step runs a clang wrapper that (like clang with ld.lld) has a child of its
    own, which must die too."""
    _, path = checkpoint
    out_dir, tmp_dir, tools = tmp_path / "out", tmp_path / "tmp", tmp_path / "tools"
    for directory in (out_dir, tmp_dir, tools):
        directory.mkdir()
    real_clang = shutil.which("clang-22")
    wrapper = tools / "clang-22"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *-shared*) sleep 6001 & wait ;; esac\n'
        f'exec {real_clang} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "TMPDIR": str(tmp_dir),
        "RT3D_TOOL_PATH": f"{tools}:{os.environ['PATH']}",
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "torch-cache"),  # torch's own persistent cache
    }
    env.pop("RT3D_DEBUG", None)
    process = subprocess.Popen(
        [os.path.join(BIN, "rt3d-compile"), str(path), "-o", str(out_dir / "m.so")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.rstrip().endswith(step):
            break
    if step == "compile and link":  # wait until the wrapper's child runs
        deadline = time.time() + 30
        while not _running("sleep 6001") and time.time() < deadline:
            time.sleep(0.05)
        assert _running("sleep 6001"), "the link step did not start"
    process.send_signal(sig)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # the signal was lost: fail alone, leaving no process behind
        process.kill()
        process.communicate()
        _kill_running("sleep 6001")
        pytest.fail(f"rt3d-compile went on after {signal.Signals(sig).name} at '{step}'")
    assert process.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert _leftovers(out_dir, tmp_dir) == []
    assert _running("sleep 6001") == [] and _running(str(tools)) == []


# ----------------------------------------------------------------- one clear line


def test_absurd_numbers_are_usage_errors(checkpoint, tmp_path):
    _, path = checkpoint
    out = str(tmp_path / "m.so")
    cases = [
        ("rt3d-compile", [str(path), "-o", out, "--input-shape", "1,3,99999999999,16,16"],
         "dimensions must be"),
        ("rt3d-compile", [str(path), "-o", out, "--group-shape", "99999999x4"], "between 1 and 65536"),
        ("rt3d-compile", [str(path), "-o", out, "--group-shape", "0x4"], "between 1 and 65536"),
        ("rt3d-prune", ["--lr", "nan", "-o", out], "must be a finite number"),
        ("rt3d-prune", ["--flops-reduction", "inf", "-o", out], "must be a finite number"),
        ("rt3d-prune", ["--penalty", "-1", "-o", out], "must be >= 0"),
        ("rt3d-prune", ["--batch-size", "0", "-o", out], "between 1 and"),
        ("rt3d-prune", ["--width", "nan", "-o", out], "must be a finite number"),
        ("rt3d-bench", ["--width", "inf"], "must be a finite number"),
        ("rt3d-bench", ["--threads", "4294967297"], "between 1 and"),
        ("rt3d-run", [out, "--input", "x.npy", "--repeat", "0"], "between 1 and"),
        ("rt3d-opt", ["-", "--mlir-elide-elementsattrs-if-larger", "-5"], "between 0 and"),
    ]
    for tool, args, message in cases:
        result = run(tool, *args, stdin="")
        assert result.returncode == 2, (tool, args, result.stderr)
        assert_one_line_error(result, message)
    assert not os.path.exists(out)


def test_shapes_that_overflow_are_one_line(checkpoint, tmp_path):
    _, path = checkpoint
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"), "--input-shape",
                 "1,3,100000,100000,100000")
    assert_one_line_error(result, "elements", "32-bit")
    assert "internal error" not in result.stderr


def test_group_shape_larger_than_the_weight_is_one_group(checkpoint, tmp_path):
    model, path = checkpoint
    out = tmp_path / "m.so"
    result = run("rt3d-compile", str(path), "-o", str(out), "--group-shape", "1000x1000", "-q")
    assert result.returncode == 0, result.stderr
    x = torch.randn(*SHAPE)
    assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def test_model_load_errors_name_the_file(tmp_path):
    path = tmp_path / "d.pt"
    path.mkdir()
    with pytest.raises(ModelLoadError, match="is a directory"):
        rt3d_mlir.compile(str(path), output=tmp_path / "m.so")
    result = run("rt3d-compile", "/dev/null", "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "/dev/null", "not a regular file")


# ----------------------------------------------------------------- models with exp: linked with libm


class Activations(nn.Module):
    """Sigmoid, SiLU, tanh, GELU (erf), softmax and an LSTM after a conv: every one needs libm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)
        self.lstm = nn.LSTM(8 * 4 * 4, 12, batch_first=True)

    def forward(self, x):
        y = self.conv(x)
        y = torch.sigmoid(y) + nn.functional.silu(y) + torch.tanh(y) + nn.functional.gelu(y)
        sequence, _ = self.lstm(y.permute(0, 2, 1, 3, 4).flatten(2))
        return torch.softmax(sequence, dim=-1)


@pytest.mark.parametrize("target", ["host", "aarch64"])
def test_models_with_exp_link_and_match(target, tmp_path):
    model = Activations().eval()
    x = torch.randn(1, 3, 4, 4, 4)
    path = tmp_path / "act.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    out = tmp_path / f"act-{target}.so"
    result = run("rt3d-compile", str(path), "-o", str(out), "--target", target, "-q")
    assert result.returncode == 0, result.stderr
    got = rt3d_mlir.load(out)(x.numpy())
    assert relative_error(got, torch_output(model, x)) <= REL_TOL


def test_unsupported_operator_is_named_at_import(tmp_path):
    class Median(nn.Module):
        def forward(self, x):
            return torch.median(x, dim=-1).values  # torch-mlir has no op for it: torch.operator

    path = tmp_path / "median.pt2"
    x = torch.randn(1, 4, 4, 6, 6)
    torch.export.save(torch.export.export(Median().eval(), (x,)), path)
    result = run("rt3d-compile", str(path), "-o", str(tmp_path / "m.so"))
    assert_one_line_error(result, "unsupported operator 'torch.aten.median.dim'", "test_hardening.py")
    assert "import" in result.stdout.splitlines()[-1]  # it stopped at the import step, not at link time
    assert not (tmp_path / "m.so").exists()


def test_python_entry_points_use_the_same_checks(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        rt3d_mlir.compile(nn.Sequential(nn.Conv3d(3, 4, 3)), torch.randn(1, 3, 4, 6, 6), output=tmp_path)


def test_rebuilt_artifact_at_the_same_path_is_not_served_stale(tmp_path):
    """The dynamic loader returns a library already loaded under the same name: a rebuilt
    artifact must still run its new code in the same process."""
    out = tmp_path / "model.so"
    x = torch.randn(1, 3, 4, 6, 6)
    for scale in (1.0, -2.0, 3.0):
        model = nn.Sequential(nn.Conv3d(3, 4, 3)).eval()
        with torch.no_grad():
            model[0].weight.mul_(scale)
        rt3d_mlir.compile(model, x, output=out)
        assert relative_error(rt3d_mlir.load(out)(x.numpy()), torch_output(model, x)) <= REL_TOL


def _threaded_model(tmp_path):
    model = nn.Sequential(nn.Conv3d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv3d(16, 8, 3, padding=1)).eval()
    x = torch.randn(1, 3, 6, 20, 20)
    out = tmp_path / "threads.so"
    rt3d_mlir.compile(model, x, output=out)
    compiled = rt3d_mlir.load(out, threads=2)
    return compiled, x.numpy(), compiled(x.numpy())


def test_concurrent_callers_share_nothing_but_the_code(tmp_path):
    """Two threads running one artifact at once (the helper threads serve one dispatch at a time;
    the other caller's dispatches start helpers of their own) get the single caller's result."""
    import threading

    compiled, x, expected = _threaded_model(tmp_path)
    results: list[np.ndarray] = []

    def call() -> None:
        for _ in range(5):
            results.append(compiled(x))

    workers = [threading.Thread(target=call) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(results) == 10
    for got in results:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_the_artifact(tmp_path):
    """The helper threads started in the parent do not exist in a forked child: it starts its own."""
    compiled, x, expected = _threaded_model(tmp_path)
    pid = os.fork()
    if pid == 0:  # the child: exit status says whether the result matched
        ok = bool(np.array_equal(compiled(x), expected))
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 60
    while True:  # a child waiting for helpers it does not have would hang: bounded wait
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    np.testing.assert_array_equal(compiled(x), expected)  # and the parent's helpers still serve it


def test_builds_compile_for_the_cpu_whose_features_were_read(monkeypatch, tmp_path):
    """The compiles name the CPU chosen (``native``), whose features decided the kernels, not the
    name clang resolved it to: on a VM whose CPUID model clang misreads, ``native`` resolved to
    rocketlake while enabling the host's AMX, and AMX kernels then failed in clang's backend."""
    from rt3d_mlir.backend import cpu as cpu_backend
    from rt3d_mlir.backend import toolchain as toolchain_module

    real = cpu_backend.cpu_features

    def misread(clang, target, cpu):
        return "misread", real(clang, target, cpu)[1]

    monkeypatch.setattr(cpu_backend, "cpu_features", misread)
    toolchain = require_toolchain(get_target("host"))
    assert toolchain.cpu == "misread" and toolchain.chosen_cpu == "native"
    calls: list[list[str]] = []

    def recorded(commands, *args):
        calls.extend(commands)
        return toolchain_module.run_tools(commands, *args)

    monkeypatch.setattr(cpu_backend, "run_tools", recorded)
    model = nn.Sequential(nn.Conv3d(3, 4, 3)).eval()
    rt3d_mlir.compile(model, torch.randn(1, 3, 4, 8, 8), output=tmp_path / "m.so")
    assert calls and all("-march=native" in command for command in calls)

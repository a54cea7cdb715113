"""Executed AArch64 instructions per inference, counted under qemu with a plugin.

    .venv/bin/python bench/aarch64_insn_counts.py [--rate 2.6] [--groups 16x16,4x4]
        [--input-size 16,112,112] [--width 1.0] [--precisions fp32,fp16,int8]

Each C3D build (dense, and KGS at ``--rate`` FLOPs reduction with random
masks for every group shape) is compiled with ``--target aarch64 --cpu
cortex-a76`` and run by the project's AArch64 harness under
``qemu-aarch64`` with ``rt3d_mlir/runtime/qemu_insn_count.c`` loaded as a TCG
plugin (built with the host C compiler, ``$CC`` or ``cc``, and cached:
``runtime.emulated.counting_plugin``). The plugin counts
every executed guest instruction, the NEON ``fmla`` among them (single
and, with ``--precisions fp16``, half precision: 8 products each), the
``sdot`` of int8 builds (16 products each; the int8 scales are calibrated on
the input clip: they set the numbers, not the work), and the loads/stores.
The harness runs the forward pass once and then twice on one thread; the
difference of the two counts is one inference, with process
start, ``dlopen`` and file I/O cancelled out.

The static ``fmla`` count of ``bench/aarch64_fma_counts.py`` (derived from
the packed tables and the schedule of an fp32 build) is printed beside the
measured one of fp32 builds: the two must agree. The Cortex-A76 column is a
lower bound for one core at 2.84 GHz (``runtime.emulated.modeled_seconds``,
the model AArch64 latency tables use): the larger of (fmla + half fmla +
sdot)/2 (two 128-bit SIMD pipes) and instructions/4 (its 4-wide decode)
cycles.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aarch64_fma_counts import fmla_counts

from rt3d_mlir.compiler import compile_model
from rt3d_mlir.models import build_model
from rt3d_mlir.pruning import apply_random_masks
from rt3d_mlir.quantization import calibrate
from rt3d_mlir.runtime.emulated import (
    counting_plugin,
    harness_path,
    modeled_seconds,
    qemu_command,
    read_counts,
)


def counted_run(plugin: str, artifact: str, x_path: str, directory: str, repeat: int) -> dict[str, int]:
    counts = os.path.join(directory, f"counts{repeat}.txt")
    y_path = os.path.join(directory, "y.bin")
    subprocess.run(
        [
            *qemu_command(),
            "-plugin",
            f"{plugin},out={counts}",
            harness_path(),
            artifact,
            "run",
            x_path,
            y_path,
            "1",
            str(repeat),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return read_counts(counts)[0]


def per_inference(plugin: str, artifact: str, x: np.ndarray, directory: str) -> dict[str, int]:
    x_path = os.path.join(directory, "x.bin")
    np.ascontiguousarray(x, dtype=np.float32).tofile(x_path)
    once = counted_run(plugin, artifact, x_path, directory, 1)
    twice = counted_run(plugin, artifact, x_path, directory, 2)
    return {key: twice[key] - once[key] for key in once}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2.6)
    parser.add_argument("--groups", default="16x16,4x4")
    parser.add_argument("--input-size", default="16,112,112", help="frames,height,width")
    parser.add_argument("--width", type=float, default=1.0, help="channel width multiplier")
    parser.add_argument("--schedule", default="", help="rt3d-reorder-loops options for every conv")
    parser.add_argument("--precisions", default="fp32", help="comma-separated: fp32, bf16, fp16, int8")
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    size = [int(v) for v in args.input_size.split(",")]
    kwargs = {"width": args.width, "input_size": size}
    torch.manual_seed(0)
    dense = build_model("c3d", **kwargs).eval()
    x = torch.randn(1, 3, *size)
    builds: list[tuple[str, torch.nn.Module, tuple[int, int] | None]] = [("dense", dense, None)]
    for text in args.groups.split(","):
        group = tuple(int(v) for v in text.split("x"))
        model = build_model("c3d", **kwargs).eval()
        model.load_state_dict(dense.state_dict())
        apply_random_masks(model, group, 1 / args.rate, "kgs", seed=0)
        builds.append((f"KGS {text} {args.rate:g}x", model, group))  # type: ignore[arg-type]
    schedule = f", schedule '{args.schedule}'" if args.schedule else ""
    print(
        f"C3D width {args.width:g}, input {'x'.join(map(str, size))}, "
        f"AArch64 cortex-a76, 1 thread{schedule}\n"
    )
    print(
        "| build | precision | instructions / inference | fmla (measured) | fmla (static count) | "
        "measured / static | half fmla | sdot | loads+stores | vs dense fp32 (instructions) | "
        "A76 lower bound (ms, 1 core) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base = None
    with tempfile.TemporaryDirectory(prefix="rt3d-insn-") as tmp:
        plugin = counting_plugin()
        for (label, model, group), precision in itertools.product(builds, precisions):
            artifact = os.path.join(tmp, "model.so")
            compile_model(
                model,
                x,
                output=artifact,
                target="aarch64",
                cpu="cortex-a76",
                group_shape=group,
                schedule=args.schedule,
                precision=precision,
                int8_scales=calibrate(model, [x]) if precision == "int8" else None,
            )
            counts = per_inference(plugin, artifact, x.numpy(), tmp)
            base = base or counts["instructions"]
            static = ratio = "-"
            if precision == "fp32":
                conv, fc, _kept = fmla_counts(model, x, group, args.schedule)
                static, ratio = f"{(conv + fc) / 1e9:.3f} G", f"{counts['fmla'] / (conv + fc):.6f}"
            print(
                f"| {label} | {precision} | {counts['instructions'] / 1e9:.3f} G | "
                f"{counts['fmla'] / 1e9:.3f} G | {static} | {ratio} | {counts['fmla_h'] / 1e9:.3f} G | "
                f"{counts['sdot'] / 1e9:.3f} G | "
                f"{counts['memory'] / 1e9:.3f} G | "
                f"{base / counts['instructions']:.2f}x | {modeled_seconds(counts) * 1e3:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

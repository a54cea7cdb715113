"""rt3d-run: run a compiled artifact on an input saved with numpy."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import atomic_output, check_output_path, read_npy
from rt3d_mlir.tools.cli import ArgumentParser, bounded_int, run_tool


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rt3d-run", description="Run a compiled rt3d artifact.")
    parser.add_argument(
        "artifact", help="compiled model: a shared object (.so) or a SPIR-V artifact (.spv) run on Vulkan"
    )
    parser.add_argument("--input", required=True, help="input array (.npy)")
    parser.add_argument("--output", help="where to save the output array (.npy)")
    parser.add_argument(
        "--repeat", type=bounded_int(1), default=1, help="run N times and report the median time"
    )
    parser.add_argument(
        "--threads",
        type=bounded_int(1),
        help="threads the kernels use (default: $RT3D_NUM_THREADS, else all CPUs; ignored for .spv)",
    )
    parser.add_argument(
        "--device",
        help="Vulkan device for a .spv artifact: its index or part of its name "
        "(default: the first GPU, else the first device, e.g. Mesa's lavapipe CPU driver)",
    )
    return parser


def _load_input(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise Rt3dError(f"input file '{path}' does not exist")
    return read_npy(path)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.output:
        check_output_path(args.output)  # fail before running the model
    from rt3d_mlir.runtime import load

    model = load(args.artifact, threads=args.threads, device=args.device)
    x = _load_input(args.input)
    times = []
    y = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        y = model(x)
        times.append(time.perf_counter() - start)
    assert y is not None
    if args.output:
        with atomic_output(args.output) as tmp, open(tmp, "wb") as f:
            np.save(f, y)
    where = getattr(model, "device_name", None) or f"{model.threads} thread(s)"
    print(
        f"output shape {tuple(y.shape)}, median latency {1e3 * float(np.median(times)):.2f} ms "
        f"over {args.repeat} run(s) on {where}",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-run", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())

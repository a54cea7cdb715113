"""rt3d-demo: the main job on a built-in default, end to end.

Builds a small C3D, gives it kernel-group sparsity (random KGS masks with
4x4 groups until the pruning tool lands), saves it as an rt3d checkpoint,
compiles it to a host shared object, runs it, and compares outputs and
latency with PyTorch.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from rt3d_mlir.tools.cli import ArgumentParser, run_tool


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rt3d-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", default="out/demo", help="where to write the checkpoint and .so")
    parser.add_argument("--width", type=float, default=0.25, help="C3D width multiplier")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=56, help="input height and width")
    parser.add_argument("--keep", type=float, default=0.4, help="fraction of kernel positions kept")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    import rt3d_mlir
    from rt3d_mlir.frontend import save_checkpoint
    from rt3d_mlir.models import build_model
    from rt3d_mlir.pruning import apply_random_masks
    from rt3d_mlir.pruning.flops import conv_flops, flops_reduction
    from rt3d_mlir.tools.compile import main as compile_main

    torch.manual_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    kwargs = {"width": args.width, "input_size": [args.frames, args.size, args.size]}
    input_shape = (1, 3, args.frames, args.size, args.size)
    model = build_model("c3d", **kwargs).eval()
    first_conv = "features.conv1a"
    apply_random_masks(model, (4, 4), args.keep, "kgs", seed=args.seed, skip=[first_conv])
    layers = conv_flops(model, input_shape)
    reduction = flops_reduction(layers)
    checkpoint = os.path.join(args.out_dir, "c3d_kgs.pt")
    save_checkpoint(
        checkpoint, "c3d", kwargs, model,
        sparsity={"scheme": "kgs", "group_shape": [4, 4]}, input_shape=input_shape,
    )
    print(f"[1/3] C3D (width {args.width}, input {input_shape}) with random 4x4 KGS masks: "
          f"conv FLOPs reduction {reduction:.2f}x -> {checkpoint}", flush=True)

    artifact = os.path.join(args.out_dir, "c3d_kgs.so")
    status = compile_main([checkpoint, "-o", artifact, "--target", "host"])
    if status:
        return status
    print(f"[2/3] compiled -> {artifact}")

    compiled = rt3d_mlir.load(artifact)
    x = torch.randn(*input_shape)
    with torch.no_grad():
        expected = model(x).numpy()
    got = compiled(x.numpy())
    rel = float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-30))
    torch.set_num_threads(2)
    with torch.no_grad():
        torch_ms = _median_ms(lambda: model(x), args.repeat)
    ours_ms = _median_ms(lambda: compiled(x.numpy()), args.repeat)
    print(f"[3/3] ran it: max relative difference vs PyTorch {rel:.2e} "
          f"({'OK' if rel <= 1e-4 else 'MISMATCH'})")
    print(f"      latency (median of {args.repeat}): rt3d {ours_ms:.1f} ms (1 thread, reference "
          f"lowering), PyTorch eager {torch_ms:.1f} ms (2 threads)")
    return 0 if rel <= 1e-4 else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-demo", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())

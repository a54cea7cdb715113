"""rt3d-compile: compile a (pruned) model file into an artifact."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rt3d_mlir.kernel_packing import PRECISIONS
from rt3d_mlir.tools.cli import ArgumentParser, group_shape, parse_shape, raise_pending_signal, run_tool


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="rt3d-compile",
        description="Compile a model (.pt nn.Module, .pt2 ExportedProgram, or rt3d checkpoint) "
        "into a shared object with the rt3d C ABI (host, aarch64) or a SPIR-V artifact for Vulkan (spirv).",
    )
    parser.add_argument("model", nargs="?", help="model file")
    parser.add_argument("-o", "--output", help="artifact to write (e.g. model.so, model.spv)")
    parser.add_argument(
        "--emit-header",
        metavar="FILE",
        help="write rt3d.h, the C declarations of the host/AArch64 artifact ABI, to FILE (with or "
        "without a model to compile)",
    )
    parser.add_argument(
        "--emit-vulkan-runtime",
        metavar="DIR",
        help="write the C runtime for SPIR-V artifacts (rt3d_vulkan.h, its sources) into DIR and build "
        "librt3d_vulkan.so there for --target's CPU (host or aarch64; host with --target spirv)",
    )
    parser.add_argument(
        "--target", default="host", help="code generation target: host, aarch64 or spirv (default: host)"
    )
    parser.add_argument(
        "--input-shape",
        type=parse_shape,
        help="input shape N,C,D,H,W (default: from the checkpoint or exported program)",
    )
    parser.add_argument(
        "--group-shape",
        type=group_shape,
        help="kernel-group shape GFxGC used to find sparsity (default: from the checkpoint, "
        "else the largest each layer's zeros fit)",
    )
    parser.add_argument("--cpu", help="CPU to tune for (default: native for host, cortex-a76 for aarch64)")
    parser.add_argument(
        "--schedule",
        default="",
        metavar="OPTIONS",
        help="override the convolution schedule: rt3d-reorder-loops options such as "
        "'tile-rows=1 tile-cols=14 loop-order=fdhw vector-dim=filters'",
    )
    parser.add_argument(
        "--tune",
        action="store_true",
        help="host: time candidate schedules of each convolution layer on this machine (minutes, "
        "once per layer shape: the choices are cached) and build with the fastest",
    )
    parser.add_argument(
        "--tune-cache",
        metavar="FILE",
        help="the measured schedules' cache (default: $XDG_CACHE_HOME/rt3d-mlir/schedules.json)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="bf16 (CPU targets) or fp16 stores the activations between convolutions in bfloat16 "
        "or IEEE half and computes those convolutions from bf16 or fp16 weights, accumulating in f32; "
        "fp16 on AArch64 and spirv sums each entry's channels in f16; on x86 fp16 is widened to f32 "
        "and slower than fp32, use bf16 there; int8 (a checkpoint from rt3d-prune --int8) "
        "computes the int8 scheme with its calibrated scales, int8 dot products (AVX-512 VNNI, "
        "AArch64 sdot, SPIR-V OpSDot) in the convs that take them (default: fp32)",
    )
    parser.add_argument(
        "--reference-kernels",
        action="store_true",
        help="lower convolutions with the slow reference (dense masked linalg) path",
    )
    parser.add_argument("--keep-intermediates", metavar="DIR", help="keep the IR and sources in DIR")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow a model file whose loading runs code from it (a pickled nn.Module .pt, pickled "
        "weights in a .pt2); only for files you trust",
    )
    parser.add_argument(
        "--time-stages",
        action="store_true",
        help="print each step's seconds and the peak memory",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.emit_header:
        from rt3d_mlir.backend.abi import header_text
        from rt3d_mlir.fileio import check_output_path, write_text

        write_text(check_output_path(args.emit_header), header_text())
        if not args.quiet:
            print(f"wrote {args.emit_header}")
    if args.emit_vulkan_runtime:
        from rt3d_mlir.backend.vulkan_runtime import build_library
        from rt3d_mlir.fileio import check_output_directory

        directory = check_output_directory(args.emit_vulkan_runtime)
        library = build_library(directory, "host" if args.target == "spirv" else args.target)
        if not args.quiet:
            print(f"wrote {library} and its sources")
    if args.emit_header or args.emit_vulkan_runtime:
        if args.model is None and args.output is None:
            return 0
    if args.model is None or args.output is None:
        parser.error("the following arguments are required: model, -o/--output")
    from tqdm import tqdm

    from rt3d_mlir.compiler import compile_model, compile_steps

    start = time.perf_counter()
    interactive = sys.stderr.isatty()
    steps = compile_steps(args.target)
    with tqdm(
        total=len(steps),
        disable=args.quiet or not interactive,
        file=sys.stderr,
        mininterval=0,
        leave=False,
        bar_format="rt3d-compile [{n_fmt}/{total_fmt}] {desc}",
    ) as bar:
        started: list[str] = []
        times: list[float] = []

        def progress(step: str) -> None:
            raise_pending_signal()  # one a library swallowed during the step before
            if started:
                bar.update(1)
            started.append(step)
            times.append(time.perf_counter())
            if bar.disable and not args.quiet:  # not a terminal: one line per step, on stdout
                print(f"rt3d-compile [{len(started)}/{len(steps)}] {step}", flush=True)
            bar.set_description_str(step)

        compile_model(
            args.model,
            output=args.output,
            target=args.target,
            input_shape=args.input_shape,
            group_shape=args.group_shape,
            cpu=args.cpu,
            keep_intermediates=args.keep_intermediates,
            reference_kernels=args.reference_kernels,
            schedule=args.schedule,
            tune=args.tune,
            tune_cache=args.tune_cache,
            precision=args.precision,
            trust_pickle=args.trust_pickle,
            progress=progress,
        )
        bar.update(bar.total - bar.n)
        bar.set_description_str("done")
    times.append(time.perf_counter())
    if args.time_stages:
        _print_stage_times(started, times)
    if not args.quiet:
        print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")
    return 0


def _print_stage_times(steps: list[str], times: list[float]) -> None:
    from rt3d_mlir.processes import peak_rss_mib

    width = max(len(step) for step in steps)
    for i, step in enumerate(steps):
        print(f"  {step:<{width}}  {times[i + 1] - times[i]:7.2f} s")
    peak = peak_rss_mib()
    print(f"  {'total':<{width}}  {times[-1] - times[0]:7.2f} s; peak RSS {peak:.0f} MiB")


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-compile", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())

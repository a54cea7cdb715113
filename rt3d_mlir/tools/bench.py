"""rt3d-bench: our builds against PyTorch, OpenVINO and ONNX Runtime (and IREE on layers) on full-size
models, in one run."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from collections.abc import Sequence

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.fileio import check_output_path, write_text
from rt3d_mlir.kernel_packing import PRECISIONS
from rt3d_mlir.tools.cli import ArgumentParser, bounded_float, bounded_int, parse_shape, run_tool

DEFAULT_VARIANTS = "dense,kgs:4x4:2.6,kgs:4x4:4,kgs:16x16:2.6,kgs:16x16:4,vanilla:4x4:2.6,vanilla:4x4:4"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="rt3d-bench",
        description="Time compiled models (dense and pruned variants) against PyTorch in one run.",
    )
    parser.add_argument(
        "--models",
        default="c3d,r2plus1d",
        help="comma-separated: c3d, r2plus1d, s3d, x3d_xs, x3d_s, x3d_m, or torchvision's tv:r3d_18, "
        "tv:mc3_18, tv:r2plus1d_18, tv:s3d",
    )
    parser.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help="comma-separated: dense or SCHEME:GFxGC:RATE (random masks keeping 1/RATE of every conv)",
    )
    parser.add_argument("--input-size", default="16,112,112", help="D,H,W of the clip (default 16,112,112)")
    parser.add_argument("--num-classes", type=bounded_int(1), default=101)
    parser.add_argument(
        "--width",
        type=bounded_float(0, 16, open_minimum=True),
        default=1.0,
        help="channel width multiplier (default 1: full size)",
    )
    parser.add_argument(
        "--threads", type=bounded_int(1), default=2, help="threads for PyTorch, our builds and IREE"
    )
    parser.add_argument("--repeat", type=bounded_int(1), default=7, help="timed calls per candidate (median)")
    parser.add_argument("--warmup", type=bounded_int(0), default=2, help="untimed calls first")
    parser.add_argument("--seed", type=bounded_int(0, (1 << 63) - 1), default=0)
    parser.add_argument(
        "--iree-layers",
        action="store_true",
        help="also time representative C3D layers with IREE (needs iree-base-compiler/runtime)",
    )
    parser.add_argument(
        "--formats",
        default="checkpoint",
        help="comma-separated model files each variant is compiled from: checkpoint, pt2 (torch.export), "
        "pt (a pickled nn.Module the bench writes itself) (default: checkpoint)",
    )
    parser.add_argument(
        "--peers",
        default="auto",
        help="other engines timed on the same weights in the same run: comma-separated openvino "
        "(its default precision here), openvino-f32, onnxruntime; 'auto' (default): those installed "
        "(the project's [peers] extra); 'none'",
    )
    parser.add_argument(
        "--schedules",
        default="rules",
        help="comma-separated: how our builds' conv schedules are chosen: rules (the compiler's fixed "
        "rules, default), tuned (measured on this machine: rt3d-compile --tune); both: side by side",
    )
    parser.add_argument("--tune-cache", metavar="FILE", help="the measured schedules' cache for 'tuned'")
    parser.add_argument(
        "--precisions",
        default="fp32",
        help="comma-separated: the precisions our builds are compiled in (rt3d-compile --precision): "
        f"{', '.join(PRECISIONS)} (default: fp32)",
    )
    parser.add_argument("--json", help="write all measurements to this JSON file")
    parser.add_argument("--markdown", help="write the tables to this markdown file")
    return parser


def _peer_table(r) -> list[str]:
    """Per variant (the same weights): PyTorch, each peer, and our fastest build of those weights."""
    if not r.peers:
        return []
    peers = list(dict.fromkeys(p.peer for p in r.peers))
    runs = {(p.peer, p.variant): p for p in r.peers}
    lines = [
        "Peers on the same weights, same run (ms; precision each computed in; max rel. error vs "
        "torch in brackets):",
        "",
        "| weights | PyTorch | " + " | ".join(peers)
        + " | rt3d (fastest build) | rt3d vs fastest f32 peer | rt3d vs fastest peer |",
        "|---|---|" + "---|" * len(peers) + "---|---|---|",
    ]
    for variant in dict.fromkeys(p.variant for p in r.peers):
        ours = [b for b in r.builds if b.variant == variant or b.variant.startswith(variant + " ")]
        if not ours:
            continue
        best = min(b.latency_ms for b in ours)
        torch_ms = next(b.torch_zeroed_ms for b in ours)
        cells = [
            f"{runs[p, variant].latency_ms:.1f} ({runs[p, variant].precision}; "
            f"{runs[p, variant].max_rel_error:.0e})"
            for p in peers
        ]
        fastest = min(runs[p, variant].latency_ms for p in peers)
        f32 = [runs[p, variant].latency_ms for p in peers if runs[p, variant].precision == "f32"]
        vs_f32 = f"{min(f32) / best:.2f}x" if f32 else "-"
        row = f"| {variant} | {torch_ms:.1f} | " + " | ".join(cells)
        lines.append(row + f" | {best:.1f} | {vs_f32} | {fastest / best:.2f}x |")
    return [*lines, ""]


def markdown(reports, layers, meta) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; command: `{meta['command']}`.",
        f"Threads: {meta['threads']}; latencies are medians of {meta['repeat']} interleaved calls "
        f"after {meta['warmup']} warm-up calls; batch 1, fp32, input {meta['input_shape']}.",
        f"Memory bandwidth, STREAM-like over {meta['bandwidth_mib']} MiB arrays with PyTorch's threaded "
        f"kernels on {meta['threads']} threads: copy {meta['copy_gbps']:.1f} GB/s, "
        f"triad {meta['triad_gbps']:.1f} GB/s.",
        "",
    ]
    for r in reports:
        lines += [
            f"### {r.model}",
            "",
            f"PyTorch eager, dense weights: **{r.torch_dense_ms:.1f} ms**.",
            "",
            "| build | conv FLOPs reduction | rt3d latency (ms) | speedup vs PyTorch dense | "
            "vs our dense | PyTorch on same zeroed weights (ms) | compile (s) | compile peak RSS (MiB) "
            "| max rel. error vs torch (int8: vs the int8 scheme in torch) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        ours_dense = next((b.latency_ms for b in r.builds if b.variant == "dense"), None)
        for b in r.builds:
            vs_dense = f"{ours_dense / b.latency_ms:.2f}x" if ours_dense else "-"
            lines.append(
                f"| {b.variant} | {b.flops_reduction:.2f}x | {b.latency_ms:.1f} | "
                f"{r.torch_dense_ms / b.latency_ms:.2f}x | {vs_dense} | {b.torch_zeroed_ms:.1f} | "
                f"{b.compile_seconds:.1f} | {b.compile_peak_rss_mib:.0f} | {b.max_rel_error:.1e} |"
            )
        lines.append("")
        lines += _peer_table(r)
        for b in r.builds:
            depthwise = [row for row in b.layers if row["kernel"].startswith("rt3d_dwconv")]
            if depthwise:
                moved = sum(row["mbytes"] for row in depthwise) / 1e3
                seconds = sum(row["ms"] for row in depthwise) / 1e3
                lines += [
                    f"{r.model} {b.variant}: {len(depthwise)} depthwise convolutions move {moved:.2f} GB "
                    f"(their buffers, once) in {1e3 * seconds:.1f} ms: {moved / seconds:.1f} GB/s, "
                    f"{100 * moved / seconds / meta['copy_gbps']:.0f}% of the copy bandwidth.",
                    "",
                ]
        for b in r.builds:
            lines += [
                f"Per kernel call, {r.model} {b.variant} ({r.threads} threads; GFLOP/s on kept "
                f"FLOPs; fraction of {r.threads} x 140 GFLOP/s; GB/s on the kernel's buffers, once):",
                "",
                "| kernel | ms | kept GFLOP | dense GFLOP | GFLOP/s | of ceiling | MB | GB/s |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for row in b.layers:
                lines.append(
                    f"| {row['kernel']} | {row['ms']:.2f} | {row['gflop']:.2f} | {row['dense_gflop']:.2f} "
                    f"| {row['gflops']:.1f} | {100 * row['fraction_of_ceiling']:.0f}% "
                    f"| {row['mbytes']:.1f} | {row['gbps']:.1f} |"
                )
            lines.append("")
    if layers:
        lines += [
            "### Representative C3D layers, dense: PyTorch, rt3d, IREE",
            "",
            "| layer | GFLOP | PyTorch (ms) | rt3d (ms) | IREE (ms) | IREE runs | IREE compile (s) |"
            " IREE max rel. error |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in layers:
            lines.append(
                f"| {row['layer']} | {row['gflop']:.1f} | {row['torch_ms']:.1f} | {row['rt3d_ms']:.1f} | "
                f"{row['iree_ms']:.0f} | {row['iree_repeat']} | {row['iree_compile_s']:.1f} | "
                f"{row['iree_max_rel_error']:.1e} |"
            )
        lines.append("")
    return "\n".join(lines)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    from rt3d_mlir import benchmarking as bm
    from rt3d_mlir.models import TWO_D, architecture_names, known_architecture

    try:
        variants = [bm.Variant.parse(v) for v in args.variants.split(",") if v.strip()]
    except ValueError as err:
        raise Rt3dError(str(err)) from None
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for model in models:
        if not known_architecture(model):
            raise Rt3dError(f"unknown model '{model}' (available: {', '.join(architecture_names())})")
        if model in TWO_D:
            raise Rt3dError(
                f"rt3d-bench times the video CNNs; time the 2D net '{model}' with bench/block_2d.py"
            )
    try:
        size = parse_shape(args.input_size)
    except argparse.ArgumentTypeError as err:
        raise Rt3dError(f"--input-size: {err}") from None
    if len(size) != 3:
        raise Rt3dError("--input-size must be D,H,W")
    for path in (args.markdown, args.json):
        if path:
            check_output_path(path)  # fail before hours of measuring
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    for fmt in formats:
        if fmt not in bm.FORMATS:
            raise Rt3dError(f"unknown format '{fmt}' in --formats (known: {', '.join(bm.FORMATS)})")
    schedules = [c.strip() for c in args.schedules.split(",") if c.strip()]
    if not schedules or any(c not in bm.SCHEDULE_CHOICES for c in schedules):
        raise Rt3dError(f"--schedules takes {' and/or '.join(bm.SCHEDULE_CHOICES)}, got '{args.schedules}'")
    if args.tune_cache and "tuned" not in schedules:
        raise Rt3dError("--tune-cache applies to --schedules tuned")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not precisions or any(p not in PRECISIONS for p in precisions):
        raise Rt3dError(f"--precisions takes {', '.join(PRECISIONS)}, got '{args.precisions}'")
    if "int8" in precisions and formats != ["checkpoint"]:
        raise Rt3dError("int8 builds are benchmarked from checkpoints, which carry the int8 scales: "
                        "--formats checkpoint")
    peers = _peers(args.peers, bm)
    if args.iree_layers and not bm.iree_available():
        raise Rt3dError(
            "IREE is not installed: pip install iree-base-compiler==3.13.0 iree-base-runtime==3.13.0 "
            "(or the project's [bench] extra)"
        )

    def log(message: str) -> None:
        print(f"rt3d-bench: {message}", file=sys.stderr, flush=True)

    log(f"measuring memory bandwidth on {args.threads} threads")
    bandwidth = bm.memory_bandwidth(args.threads)
    reports = []
    with tempfile.TemporaryDirectory(prefix="rt3d-bench-") as workdir:
        for model in models:
            reports.append(
                bm.benchmark_model(
                    model,
                    variants,
                    input_size=size,  # type: ignore[arg-type]
                    num_classes=args.num_classes,
                    width=args.width,
                    threads=args.threads,
                    repeat=args.repeat,
                    warmup=args.warmup,
                    seed=args.seed,
                    workdir=workdir,
                    formats=formats,
                    peers=peers,
                    schedule_choices=schedules,
                    tune_cache=args.tune_cache,
                    precisions=precisions,
                    log=log,
                )
            )
    layers = (
        bm.compare_layers_with_iree(size, args.threads, args.repeat, args.warmup, log)  # type: ignore[arg-type]
        if args.iree_layers
        else []
    )
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({bm.cpu_name()})",
        "command": "rt3d-bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "threads": args.threads,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "input_shape": (1, 3, *size),
        **bandwidth,
    }
    text = markdown(reports, layers, meta)
    print(text)
    if args.markdown:
        write_text(args.markdown, text)
    if args.json:
        data = bm.report_json(reports, layers, meta)
        write_text(args.json, data)
    return 0


def _peers(text: str, bm) -> list[str]:
    if text.strip() == "none":
        return []
    installed = bm.installed_peers()
    if text.strip() == "auto":
        return installed
    peers = [p.strip() for p in text.split(",") if p.strip()]
    for peer in peers:
        if peer not in bm.PEERS:
            raise Rt3dError(f"unknown peer '{peer}' in --peers (known: {', '.join(bm.PEERS)}, auto, none)")
        if peer not in installed:
            raise Rt3dError(f"peer '{peer}' is not installed: pip install the project's [peers] extra")
    return peers


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-bench", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())

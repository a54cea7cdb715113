"""rt3d-stream: activity recognition on a video file with a compiled model, window by window."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.tools.cli import ArgumentParser, bounded_int, run_tool


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="rt3d-stream",
        description="Run a compiled video model on sliding windows of a video file (decoding overlapped "
        "with inference) and report each window's top classes, its latency and the sustained frames per "
        "second against the 30 fps real-time line.",
    )
    parser.add_argument("artifact", help="compiled model (.so: host or AArch64 under qemu; .spv: Vulkan)")
    parser.add_argument("video", help="video file (anything FFmpeg decodes)")
    parser.add_argument("--stride", type=bounded_int(1), default=8, help="frames between windows (default 8)")
    parser.add_argument("--top-k", type=bounded_int(1), default=5, help="classes per window (default 5)")
    parser.add_argument("--labels", help="class names, one per line (default: class indices)")
    parser.add_argument(
        "--resize",
        default="128x171",
        help="frame size HxW before the centre crop to the model's input (default 128x171, as in training)",
    )
    parser.add_argument("--threads", type=bounded_int(1), help="kernel threads (default: all CPUs)")
    parser.add_argument("--device", help="Vulkan device for a .spv artifact (index or part of its name)")
    parser.add_argument(
        "--reference",
        metavar="MODEL",
        help="also run this PyTorch model (.pt, .pt2 or rt3d checkpoint) on every window and report "
        "whether its top class agrees",
    )
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow a --reference file whose loading runs its code"
    )
    parser.add_argument("--json", metavar="FILE", help="write every window and the summary as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    return parser


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise Rt3dError(f"--resize must be HxW with positive sizes, got '{text}'")
    return int(parts[0]), int(parts[1])


def _labels(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise Rt3dError(f"cannot read labels '{path}': {getattr(err, 'strerror', None) or err}") from None


def _reference(path: str, trust_pickle: bool):
    import torch

    from rt3d_mlir.frontend.loading import load_model_file

    loaded = load_model_file(path, trust_pickle=trust_pickle)
    if loaded.module is not None:
        module = loaded.module.eval()
    else:  # an exported program is traced in eval mode already (its module refuses .eval())
        module = loaded.program.module()  # type: ignore[union-attr]

    def run(clip):
        with torch.no_grad():
            return module(torch.from_numpy(clip)).numpy()

    return run


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    size = _size(args.resize)
    labels = _labels(args.labels)
    if not os.path.isfile(args.video):
        raise Rt3dError(f"video '{args.video}' does not exist")
    if args.json:
        from rt3d_mlir.fileio import check_output_path

        check_output_path(args.json)
    from tqdm import tqdm

    from rt3d_mlir.data.transforms import ClipTransform
    from rt3d_mlir.data.video import VideoDecodeError
    from rt3d_mlir.runtime import load
    from rt3d_mlir.streaming import REAL_TIME_FPS, classify_stream

    model = load(args.artifact, threads=args.threads, device=args.device)
    shape = tuple(model.input_shape)
    if len(shape) != 5 or shape[0] != 1 or shape[1] != 3:
        raise Rt3dError(f"'{args.artifact}' takes {list(shape)}: not a video model (1, 3, T, H, W)")
    window, crop = shape[2], (shape[3], shape[4])
    if crop[0] > size[0] or crop[1] > size[1]:
        raise Rt3dError(f"the model's {crop[0]}x{crop[1]} crop does not fit frames resized to {args.resize}")
    reference = _reference(args.reference, args.trust_pickle) if args.reference else None

    def name(index: int) -> str:
        return labels[index] if labels and index < len(labels) else str(index)

    interactive = sys.stderr.isatty()
    bar = tqdm(desc="rt3d-stream", unit="window", file=sys.stderr, disable=args.quiet or not interactive)

    def show(w) -> None:
        bar.update(1)
        if args.quiet:
            return
        text = ", ".join(f"{name(i)} {s:.3g}" for i, s in w.top)
        line = f"frames {w.first}-{w.last}: {text}  ({w.latency * 1e3:.1f} ms)"
        if w.reference is not None:
            line += f"  reference: {name(w.reference[0][0])}"
        bar.write(line, file=sys.stdout)

    try:
        report = classify_stream(
            lambda clip: model(clip), args.video, window, args.stride, ClipTransform(crop), size,
            args.top_k, reference, show,
        )
    except VideoDecodeError as err:
        raise Rt3dError(str(err)) from None
    finally:
        bar.close()
    summary = report.summary()
    if not report.windows:
        raise Rt3dError(f"'{args.video}' has {report.frames} frames: fewer than one window of {window}")
    line = (
        f"{summary['windows']} windows of {window} frames (stride {args.stride}) over {summary['frames']} "
        f"frames in {summary['seconds']:.2f} s: {summary['fps']:.1f} frames/s "
        f"({'at or above' if summary['real_time'] else 'below'} the {REAL_TIME_FPS:g} fps real-time line); "
        f"latency median {summary['latency_median_ms']:.1f} ms, p90 {summary['latency_p90_ms']:.1f} ms"
    )
    if "reference_agreement" in summary:
        line += f"; top-1 agrees with the reference in {summary['reference_agreement']:.0%} of windows"
    print(line)
    if args.json:
        from rt3d_mlir.fileio import write_text

        record = {
            "summary": summary,
            "windows": [
                {
                    "first": w.first, "last": w.last, "latency_ms": w.latency * 1e3,
                    "top": [{"class": name(i), "index": i, "score": s} for i, s in w.top],
                    **({"reference_top1": name(w.reference[0][0])} if w.reference is not None else {}),
                }
                for w in report.windows
            ],
        }
        write_text(args.json, json.dumps(record, indent=1) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-stream", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())

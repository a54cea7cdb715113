"""rt3d-stream: a compiled model on a stream: activity recognition on a video window by window,
detection on video frames or a folder of images, segmentation of a volume slice by slice."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

from rt3d_mlir.errors import Rt3dError
from rt3d_mlir.tools.cli import ArgumentParser, bounded_int, parse_shape, run_tool


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="rt3d-stream",
        description="Run a compiled model on a stream. activity (a video model, 5-D input): sliding "
        "windows of a video file, decoding overlapped with inference; each window's top classes and "
        "latency, and the sustained frames per second against the 30 fps real-time line. detect (a "
        "detector, 3-channel images): boxes after NMS per video frame or image, as JSON and drawn on "
        "PNGs. segment (a 2D segmentation net, 1-channel slices): a volume (.npy or NIfTI) slice by "
        "slice; Dice against --truth, overlays as PNGs.",
    )
    parser.add_argument("artifact", help="compiled model (.so: host or AArch64 under qemu; .spv: Vulkan)")
    parser.add_argument(
        "source", help="video file (activity, detect), folder of images (detect) or volume (segment)"
    )
    parser.add_argument(
        "--task",
        choices=("activity", "detect", "segment"),
        help="default: from the model's input: 5-D activity, 3 channels detect, 1 channel segment",
    )
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
        help="also run this PyTorch model (.pt, .pt2 or rt3d checkpoint) on the same inputs and report "
        "whether it agrees (top class per window, box labels per frame, labels per voxel)",
    )
    parser.add_argument(
        "--trust-pickle", action="store_true", help="allow a --reference file whose loading runs its code"
    )
    parser.add_argument("--score", type=float, default=0.25, help="detect: the lowest box score kept")
    parser.add_argument("--iou", type=float, default=0.5, help="detect: NMS overlap threshold")
    parser.add_argument("--truth", help="segment: the label volume (.npy or NIfTI) to score with Dice")
    parser.add_argument(
        "--frames-dir", metavar="DIR", help="detect, segment: write PNGs with boxes or overlays"
    )
    parser.add_argument("--json", metavar="FILE", help="write every result and the summary as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    return parser


def _size(text: str) -> tuple[int, int]:
    try:
        size = parse_shape(text.lower())
    except argparse.ArgumentTypeError:
        size = ()
    if len(size) != 2:
        raise Rt3dError(f"--resize must be HxW with positive sizes, got '{text}'")
    return size  # type: ignore[return-value]


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
    labels = _labels(args.labels)
    if not os.path.exists(args.source):
        raise Rt3dError(f"'{args.source}' does not exist")
    from rt3d_mlir.fileio import check_output_directory, check_output_path

    if args.json:
        check_output_path(args.json)
    if args.frames_dir:
        check_output_directory(args.frames_dir)
    from rt3d_mlir.runtime import load

    model = load(args.artifact, threads=args.threads, device=args.device)
    shape = tuple(model.input_shape)
    task = args.task or {5: "activity"}.get(len(shape)) or ("detect" if shape[1] == 3 else "segment")
    expected = {"activity": (5, 3), "detect": (4, 3), "segment": (4, 1)}[task]
    if len(shape) != expected[0] or shape[0] != 1 or shape[1] != expected[1]:
        raise Rt3dError(
            f"'{args.artifact}' takes {list(shape)}: not a {task} model (1, {expected[1]}, "
            f"{'T, ' if task == 'activity' else ''}H, W)"
        )

    def name(index: int) -> str:
        return labels[index] if labels and index < len(labels) else str(index)

    runner = {"activity": _activity, "detect": _detect, "segment": _segment}[task]
    args.written = []  # the PNGs this run wrote: removed if it fails or is interrupted
    try:
        record = runner(args, model, shape, name)
        if args.json:
            from rt3d_mlir.fileio import write_text

            write_text(args.json, json.dumps(record, indent=1) + "\n")
    except BaseException:
        for path in args.written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return 0


def _png(args, name: str, image) -> None:
    """Write ``name``.png into --frames-dir (atomically; remembered, to be removed on failure)."""
    from rt3d_mlir.fileio import atomic_output

    path = os.path.join(args.frames_dir, f"{name}.png")
    with atomic_output(path) as partial:
        image.save(partial, format="PNG")
    args.written.append(path)


def _progress(args, unit: str, total: int | None = None):
    """A tqdm bar on stderr when it is a terminal (and not --quiet)."""
    from tqdm import tqdm

    quiet = args.quiet or not sys.stderr.isatty()
    return tqdm(desc="rt3d-stream", unit=unit, total=total, file=sys.stderr, disable=quiet)


def _detect(args, model, shape, name) -> dict:
    from rt3d_mlir.data.video import VideoDecodeError
    from rt3d_mlir.streaming import detect_frames, draw_boxes, image_frames

    names = [name(i) for i in range(model.output_shape[1] - 5)]
    frames_out = []
    reference = _reference(args.reference, args.trust_pickle) if args.reference else None

    def show(result, frame) -> None:
        if not args.quiet:
            pairs = zip(result.labels, result.scores, strict=True)
            found = ", ".join(f"{name(int(c))} {s:.2f}" for c, s in pairs)
            line = f"{result.name}: {len(result.scores)} boxes{': ' + found if found else ''} "
            line += f"({result.latency * 1e3:.1f} ms)"
            if result.reference_labels is not None:
                line += f"  reference: {len(result.reference_labels)} boxes"
            print(line)
        if args.frames_dir:
            _png(args, result.name, draw_boxes(frame, result, names))
        frames_out.append({
            "name": result.name, "latency_ms": result.latency * 1e3,
            "boxes": [
                {"class": name(int(c)), "index": int(c), "score": float(s), "box": [float(v) for v in b]}
                for b, s, c in zip(result.boxes, result.scores, result.labels, strict=True)
            ],
        })

    start = time.perf_counter()
    try:
        results = detect_frames(
            model, image_frames(args.source), shape[2:], args.score, args.iou, show, reference
        )
    except VideoDecodeError as err:
        raise Rt3dError(str(err)) from None
    except OSError as err:  # an image PIL cannot read (UnidentifiedImageError is an OSError)
        raise Rt3dError(f"cannot read an image of '{args.source}': {err}") from None
    seconds = time.perf_counter() - start
    if not results:
        raise Rt3dError(f"'{args.source}' holds no images or frames")
    latencies = sorted(r.latency for r in results)
    summary = {
        "frames": len(results), "seconds": seconds, "fps": len(results) / seconds,
        "latency_median_ms": statistics.median(latencies) * 1e3,
    }
    line = (f"{len(results)} frames in {seconds:.2f} s: {summary['fps']:.1f} frames/s, "
            f"model latency median {summary['latency_median_ms']:.1f} ms")
    if reference is not None:  # the same boxes' labels, in the same order
        same = [np.array_equal(r.labels, r.reference_labels) for r in results]
        summary["reference_agreement"] = sum(same) / len(same)
        line += f"; the same box labels as the reference in {summary['reference_agreement']:.0%} of frames"
    print(line)
    return {"summary": summary, "frames": frames_out}


def _read_volume(path: str) -> np.ndarray:
    from rt3d_mlir.data.formats import read_nifti

    if path.endswith((".nii", ".nii.gz")):
        return read_nifti(path)
    from rt3d_mlir.fileio import read_npy

    volume = read_npy(path)
    if volume.ndim != 3:
        raise Rt3dError(f"'{path}' holds a {volume.ndim}-D array; a volume is 3-D (D, H, W)")
    return volume


def _segment(args, model, shape, name) -> dict:
    from rt3d_mlir.data.metrics import dice
    from rt3d_mlir.streaming import overlay, segment_volume

    volume = _read_volume(args.source)
    if tuple(volume.shape[1:]) != tuple(shape[2:]):
        raise Rt3dError(
            f"'{args.source}' has slices of {list(volume.shape[1:])}; the model takes {list(shape[2:])}"
        )
    truth = _read_volume(args.truth) if args.truth else None
    if truth is not None and truth.shape != volume.shape:
        raise Rt3dError(f"'{args.truth}' {list(truth.shape)} and '{args.source}' {list(volume.shape)} differ")
    start = time.perf_counter()
    with _progress(args, "slice", volume.shape[0]) as bar:
        predicted, latencies = segment_volume(model, volume, lambda _: bar.update(1))
    seconds = time.perf_counter() - start
    reference = _reference(args.reference, args.trust_pickle) if args.reference else None
    classes = int(model.output_shape[1])
    summary: dict[str, float | int] = {
        "slices": len(latencies), "seconds": seconds, "slices_per_second": len(latencies) / seconds,
        "latency_median_ms": statistics.median(latencies) * 1e3,
    }
    counts = {name(c): int((predicted == c).sum()) for c in range(classes)}
    line = f"{len(latencies)} slices in {seconds:.2f} s: {summary['slices_per_second']:.1f} slices/s"
    if truth is not None:
        summary["dice"] = dice(predicted, truth.astype(np.int64), classes)
        line += f"; Dice {summary['dice']:.3f}"
    if reference is not None:
        expected, _ = segment_volume(reference, volume)
        summary["reference_agreement"] = float((expected == predicted).mean())
        line += f"; {summary['reference_agreement']:.2%} of voxels labelled as by the reference"
        if truth is not None:
            summary["reference_dice"] = dice(expected, truth.astype(np.int64), classes)
            line += f" (its Dice {summary['reference_dice']:.3f})"
    print(line)
    if args.frames_dir:
        for depth in range(volume.shape[0]):
            _png(args, f"slice{depth:04d}", overlay(volume[depth], predicted[depth]))
    return {"summary": summary, "voxels_per_class": counts}


def _activity(args, model, shape, name) -> dict:
    size = _size(args.resize)
    from rt3d_mlir.data.transforms import ClipTransform
    from rt3d_mlir.data.video import VideoDecodeError
    from rt3d_mlir.streaming import REAL_TIME_FPS, classify_stream

    window, crop = shape[2], (shape[3], shape[4])
    if crop[0] > size[0] or crop[1] > size[1]:
        raise Rt3dError(f"the model's {crop[0]}x{crop[1]} crop does not fit frames resized to {args.resize}")
    reference = _reference(args.reference, args.trust_pickle) if args.reference else None
    bar = _progress(args, "window")

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
            lambda clip: model(clip), args.source, window, args.stride, ClipTransform(crop), size,
            args.top_k, reference, show,
        )
    except VideoDecodeError as err:
        raise Rt3dError(str(err)) from None
    finally:
        bar.close()
    summary = report.summary()
    if not report.windows:
        raise Rt3dError(f"'{args.source}' has {report.frames} frames: fewer than one window of {window}")
    line = (
        f"{summary['windows']} windows of {window} frames (stride {args.stride}) over {summary['frames']} "
        f"frames in {summary['seconds']:.2f} s: {summary['fps']:.1f} frames/s "
        f"({'at or above' if summary['real_time'] else 'below'} the {REAL_TIME_FPS:g} fps real-time line); "
        f"latency median {summary['latency_median_ms']:.1f} ms, p90 {summary['latency_p90_ms']:.1f} ms"
    )
    if "reference_agreement" in summary:
        line += f"; top-1 agrees with the reference in {summary['reference_agreement']:.0%} of windows"
    print(line)
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
    return record


def main(argv: Sequence[str] | None = None) -> int:
    return run_tool("rt3d-stream", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())

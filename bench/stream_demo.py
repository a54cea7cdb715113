"""The activity demo on a stream: compiled video models against PyTorch on the same generated clip.

    .venv/bin/python bench/stream_demo.py [--models c3d,r2plus1d] [--variants dense,kgs:4x4:2.6,kgs:4x4:4]
        [--seconds 30] [--stride 8] [--threads 2] [--targets host] [--rounds 2]

Writes a ``--seconds`` clip at 30 fps (moving shapes on a textured background, 320x240, H.264), then
for each model (full size, random weights; ``--variants`` as for ``rt3d-bench``: random KGS masks at
the FLOPs reduction) runs ``rt3d_mlir.streaming.classify_stream`` over it: 16-frame windows every
``--stride`` frames, decoded by a thread ahead of inference, preprocessed as in training. Each build
is run on each ``--targets`` runtime (host: the shared object on ``--threads``; spirv: the SPIR-V
artifact on the first Vulkan device, lavapipe here), and PyTorch (eager, dense, same threads) on the
same stream; ``--rounds`` passes, engines in turn, the median kept. Prints a markdown table: frames
per second (decoding included) against the 30 fps line, and the time from a window's last frame to
its labels (median, p90).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import av
import numpy as np
import torch
from tqdm import tqdm

from rt3d_mlir import runtime
from rt3d_mlir.benchmarking import Variant, sparse_variant
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.data.transforms import ClipTransform
from rt3d_mlir.models import build_model
from rt3d_mlir.streaming import REAL_TIME_FPS, classify_stream

FPS, SIZE, CROP, WINDOW = 30, (128, 171), 112, 16
VIDEO = (240, 320)  # the clip's frames (H.264 needs even sizes); decoded and resized to SIZE


def write_clip(path: str, seconds: float) -> None:
    """Moving bright discs and bars over a fixed texture, ``seconds`` at 30 fps."""
    rng = np.random.default_rng(0)
    height, width = VIDEO
    texture = (rng.random((height, width, 3)) * 80 + 40).astype(np.float32)
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * FPS)):
            image = texture.copy()
            cx, cy = (20 + 3 * i) % width, height / 2 + 30 * np.sin(i / 15)
            image[(xs - cx) ** 2 + (ys - cy) ** 2 < 225] = (230, 60, 40)
            bar = (10 + 2 * i) % height
            image[bar : bar + 8, 40:120] = (40, 200, 80)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="c3d,r2plus1d")
    parser.add_argument("--variants", default="dense,kgs:4x4:2.6,kgs:4x4:4")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--targets", default="host")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transform = ClipTransform(CROP)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rt3d-stream-demo-") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        write_clip(clip, args.seconds)
        for name in args.models.split(","):
            torch.manual_seed(0)
            dense = build_model(name).eval()
            x = torch.randn(1, 3, WINDOW, CROP, CROP)
            engines = {}
            for text in args.variants.split(","):
                variant = Variant.parse(text)
                model = sparse_variant(dense, variant, seed=0)
                for target in args.targets.split(","):
                    suffix = "spv" if target == "spirv" else "so"
                    path = os.path.join(tmp, f"{name}-{text.replace(':', '_')}-{target}.{suffix}")
                    compile_model(model, x, output=path, target=target, group_shape=variant.group_shape)
                    compiled = runtime.load(path, threads=args.threads)
                    engines[f"rt3d {target} {text}"] = compiled

            def eager(clip_array: np.ndarray, model=dense) -> np.ndarray:
                with torch.no_grad():
                    return model(torch.from_numpy(clip_array)).numpy()

            engines["PyTorch dense"] = eager
            results: dict[str, list] = {label: [] for label in engines}
            for _ in tqdm(range(args.rounds), desc=f"{name}: rounds"):
                for label, engine in engines.items():
                    report = classify_stream(engine, clip, WINDOW, args.stride, transform, SIZE, k=1)
                    results[label].append(report)
            for label, reports in results.items():
                fps = statistics.median(r.fps for r in reports)
                latency = sorted(w.latency for r in reports for w in r.windows)
                rows.append(
                    f"| {name} | {label} | {reports[0].frames} | {len(reports[0].windows)} | {fps:.1f} | "
                    f"{'yes' if fps >= REAL_TIME_FPS else 'no'} | {statistics.median(latency) * 1e3:.0f} | "
                    f"{latency[int(0.9 * (len(latency) - 1))] * 1e3:.0f} |"
                )
    print("| model | engine | frames | windows | frames/s | >= 30 fps | latency median (ms) | p90 (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Activity recognition on a video stream: sliding windows of frames, decoding overlapped with
inference, per-window labels and latency, sustained frames per second (``rt3d-stream``).

A decoder thread reads the video once, in order (:meth:`VideoDecoder.frames`, frames resized as
for training) into a bounded queue: it runs ahead of inference by at most ``queue_frames`` frames
and never buffers the whole video. The consumer keeps the last ``window`` frames; every
``stride`` frames (once a window is full) it makes the clip as evaluation does
(:class:`~rt3d_mlir.data.transforms.ClipTransform`: centre crop, Kinetics normalisation), runs the
model on it and records the top-k classes. A window's *latency* is the time from its last frame
leaving the decoder to its labels; the stream's *frames per second* is the frames decoded over
the wall time from the first frame to the last window's labels, decoding included (a reference
model's runs excluded).
"""

from __future__ import annotations

import os
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from rt3d_mlir.data.transforms import ClipTransform
from rt3d_mlir.data.video import VideoDecoder

REAL_TIME_FPS = 30.0  # the papers' real-time line
_END = object()


@dataclass
class Window:
    """One window's result: its frames ``[first, last]``, the top classes as (index, score) with
    the best first, the latency (seconds), and the reference model's top classes if one ran."""

    first: int
    last: int
    top: list[tuple[int, float]]
    latency: float
    reference: list[tuple[int, float]] | None = None


@dataclass
class StreamReport:
    windows: list[Window] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0  # wall time, first frame decoded to the last window's labels

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, float | int | bool]:
        latencies = sorted(w.latency for w in self.windows)
        agree = [w.top[0][0] == w.reference[0][0] for w in self.windows if w.reference is not None]
        result: dict[str, float | int | bool] = {
            "frames": self.frames,
            "windows": len(self.windows),
            "seconds": self.seconds,
            "fps": self.fps,
            "real_time": self.fps >= REAL_TIME_FPS,
        }
        if latencies:
            result["latency_median_ms"] = statistics.median(latencies) * 1e3
            result["latency_p90_ms"] = latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))] * 1e3
        if agree:
            result["reference_agreement"] = sum(agree) / len(agree)
        return result


def decoded_frames(path: str, size: tuple[int, int] | None, queue_frames: int) -> Iterator[np.ndarray]:
    """The video's frames (uint8 ``[H, W, 3]``), decoded by a thread of their own at most
    ``queue_frames`` ahead of the consumer. Decoding errors reach the consumer; leaving the loop
    early stops the thread."""
    frames: queue.Queue[object] = queue.Queue(maxsize=max(1, queue_frames))
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            with VideoDecoder(path, size=size) as decoder:
                for frame in decoder.frames():
                    if not put(frame):
                        return
        except BaseException as err:
            failure.append(err)
        put(_END)

    thread = threading.Thread(target=decode, name="rt3d-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = frames.get()
            if item is _END:
                break
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        stop.set()
        thread.join()


def top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` largest of a score vector as (index, score), best first."""
    flat = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-flat, kind="stable")[:k]
    return [(int(i), float(flat[i])) for i in order]


def classify_stream(
    model: Callable[[np.ndarray], np.ndarray],
    path: str,
    window: int,
    stride: int,
    transform: ClipTransform,
    size: tuple[int, int],
    k: int = 5,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
    on_window: Callable[[Window], None] | None = None,
    queue_frames: int = 64,
) -> StreamReport:
    """Run ``model`` (a ``[1, 3, window, crop_h, crop_w]`` float32 clip to scores) over sliding
    windows of the video at ``path`` (frames resized to ``size``); see the module docstring."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    report = StreamReport()
    recent: deque[np.ndarray] = deque(maxlen=window)
    start = None
    reference_seconds = 0.0
    for index, frame in enumerate(decoded_frames(path, size, queue_frames)):
        arrived = time.perf_counter()
        if start is None:
            start = arrived
        recent.append(frame)
        report.frames = index + 1
        if len(recent) < window or (index + 1 - window) % stride:
            continue
        clip = transform(np.stack(recent)).numpy()[None]
        top = top_k(model(clip), k)
        latency = time.perf_counter() - arrived
        result = Window(index + 1 - window, index, top, latency)
        if reference is not None:  # its time is not the stream's
            before = time.perf_counter()
            result.reference = top_k(reference(clip), k)
            reference_seconds += time.perf_counter() - before
        report.windows.append(result)
        if on_window is not None:
            on_window(result)
    if start is not None:
        report.seconds = time.perf_counter() - start - reference_seconds
    return report


# ---------------------------------------------------------------- detection and segmentation


@dataclass
class Frame:
    """One image's result: its index and source name, detections (``boxes`` [K, 4] x0, y0, x1, y1
    in the source image's pixels, ``scores``, ``labels``) and the model's latency (seconds)."""

    index: int
    name: str
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    latency: float
    reference_labels: np.ndarray | None = None  # the reference model's, if one ran


def image_frames(path: str) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 RGB ``[H, W, 3]``) of a video's frames (decoded ahead, see
    :func:`decoded_frames`) or of the images in a folder (sorted by name)."""
    from PIL import Image

    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")))
        for name in names:
            with Image.open(os.path.join(path, name)) as image:
                yield name, np.asarray(image.convert("RGB"))
        return
    for index, frame in enumerate(decoded_frames(path, None, 8)):
        yield f"frame{index:06d}", frame


def detect_frames(
    model: Callable[[np.ndarray], np.ndarray],
    frames: Iterator[tuple[str, np.ndarray]],
    input_size: tuple[int, int],
    score: float = 0.25,
    iou: float = 0.5,
    on_frame: Callable[[Frame, np.ndarray], None] | None = None,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Frame]:
    """The detector on each frame, resized to ``input_size`` and normalised as the built-in
    detection set, its output decoded and suppressed in numpy (:func:`rt3d_mlir.models.yolo.detect`);
    boxes scaled back to each frame's size. ``on_frame(result, frame)`` sees each; ``reference`` (a
    PyTorch model, say) runs on the same input and its box labels are kept beside."""
    from PIL import Image

    from rt3d_mlir.data.synthetic import MEAN, STD
    from rt3d_mlir.models.yolo import detect

    results = []
    height, width = input_size
    for index, (name, frame) in enumerate(frames):
        resized = np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR), np.float32)
        x = ((resized / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        start = time.perf_counter()
        found = detect(model(x), input_size, score, iou)[0]
        latency = time.perf_counter() - start
        scale = np.array([frame.shape[1] / width, frame.shape[0] / height] * 2, np.float32)
        result = Frame(index, name, found["boxes"] * scale, found["scores"], found["labels"], latency)
        if reference is not None:
            result.reference_labels = detect(reference(x), input_size, score, iou)[0]["labels"]
        results.append(result)
        if on_frame is not None:
            on_frame(result, frame)
    return results


def draw_boxes(frame: np.ndarray, result: Frame, names: list[str] | None = None):
    """A PIL image of ``frame`` with ``result``'s boxes and labels drawn."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    for box, s, label in zip(result.boxes, result.scores, result.labels, strict=True):
        color = _COLORS[int(label) % len(_COLORS)]
        draw.rectangle([float(v) for v in box], outline=color, width=2)
        text = names[int(label)] if names and int(label) < len(names) else str(int(label))
        draw.text((float(box[0]) + 2, float(box[1]) + 1), f"{text} {s:.2f}", fill=color)
    return image


_COLORS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))


def segment_volume(
    model: Callable[[np.ndarray], np.ndarray],
    volume: np.ndarray,
    done: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """A 2D segmentation net on every slice of ``volume`` ``[D, H, W]`` (standardized per volume,
    as in training): the label map ``[D, H, W]`` and each slice's latency (seconds). ``done`` is
    called with each slice's index once it is labelled (progress)."""
    from rt3d_mlir.data.formats import standardized

    x = standardized(np.asarray(volume, np.float32)).astype(np.float32)
    labels, latencies = [], []
    for depth in range(x.shape[0]):
        start = time.perf_counter()
        scores = model(np.ascontiguousarray(x[depth][None, None]))
        latencies.append(time.perf_counter() - start)
        labels.append(np.asarray(scores)[0].argmax(0))
        if done is not None:
            done(depth)
    return np.stack(labels).astype(np.int64), latencies


def overlay(slice_: np.ndarray, labels: np.ndarray):
    """A PIL image of a slice in grey with its foreground labels blended in colour."""
    from PIL import Image

    low, high = float(slice_.min()), float(slice_.max())
    grey = ((slice_ - low) / max(high - low, 1e-6) * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    for label in range(1, int(labels.max()) + 1 if labels.size else 1):
        mask = labels == label
        rgb[mask] = 0.5 * rgb[mask] + 0.5 * np.array(_COLORS[(label - 1) % len(_COLORS)], np.float32)
    return Image.fromarray(rgb.astype(np.uint8))

"""Decoding selected frames of a video file with PyAV, and choosing which frames make a clip.

:class:`VideoDecoder` decodes only what a clip needs: it seeks to the last
keyframe at or before the clip's first frame (when that frame is not the
first of the video), decodes forward, converts (and resizes, in FFmpeg's
swscale) only the frames it keeps, and stops as soon as it holds the clip's
last frame.

Frame ``i`` is the frame whose presentation time is ``i / fps`` after the
stream start, so a clip read after a seek is the same as one read by
decoding from the start.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from types import TracebackType

import av
import numpy as np
import torch


class VideoDecodeError(RuntimeError):
    """A video file cannot be opened or decoded."""


class VideoDecoder:
    """Read frames by index from one video file.

    Args:
        path: the video file.
        size: ``(height, width)`` to resize frames to while converting them
            to RGB (bilinear, in swscale); ``None`` keeps the stored size.
        threads: decoder threads (1 suits data loader worker processes).

    ``frames_decoded`` counts the frames the decoder has produced so far
    (kept or not), so callers can check that decoding stopped early.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str, size: tuple[int, int] | None = None, threads: int = 1) -> None:
        self.path = str(path)
        self.size = size
        self.threads = threads
        self.frames_decoded = 0
        self._open()
        rate = self._stream.average_rate or self._stream.guessed_rate
        self._rate = Fraction(rate) if rate else None
        self.fps: float | None = float(rate) if rate else None
        self._start = self._stream.start_time or 0
        self._num_frames: int | None = None

    def _open(self) -> None:
        try:
            self._container = av.open(self.path)
        except (av.error.FFmpegError, OSError) as err:
            raise VideoDecodeError(f"cannot open video '{self.path}': {err}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(f"'{self.path}' has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = self.threads
        self._fresh = True

    def _rewind(self) -> None:
        """Go back to the first frame: reopening is more robust than seeking to 0."""
        if not self._fresh:
            self._container.close()
            self._open()

    # ------------------------------------------------------------- metadata
    @property
    def num_frames(self) -> int:
        """Number of frames: from the container header, else from the duration, else by counting."""
        if self._num_frames is None:
            count = self._stream.frames
            if not count and self.fps:
                if self._stream.duration and self._stream.time_base:
                    count = round(float(self._stream.duration * self._stream.time_base) * self.fps)
                elif self._container.duration:
                    count = round(self._container.duration / av.time_base * self.fps)
            if not count:
                count = self._count_frames()
            self._num_frames = int(count)
        return self._num_frames

    def _count_frames(self) -> int:
        self._rewind()
        return sum(1 for _ in self._packets_decoded())

    # ------------------------------------------------------------- decoding
    def read(self, indices: Sequence[int]) -> np.ndarray:
        """The frames at ``indices`` (any order, repeats allowed): uint8 ``[N, H, W, 3]`` RGB.

        An index past the last decodable frame (a header that over-states the
        frame count) gets the last frame.
        """
        if len(indices) == 0:
            raise ValueError("no frame indices given")
        if min(indices) < 0:
            raise ValueError(f"frame indices must be non-negative, got {min(indices)}")
        wanted = sorted(set(int(i) for i in indices))
        frames = None
        if wanted[0] > 0 and self._can_seek():
            frames = self._decode(wanted, seek=True)
        if frames is None:
            frames = self._decode(wanted, seek=False)
        if frames is None:
            raise VideoDecodeError(f"'{self.path}' has no decodable video frames")
        return np.stack([frames[i] for i in indices])

    def _can_seek(self) -> bool:
        return self._rate is not None and self._stream.time_base is not None

    def _index(self, frame: av.VideoFrame) -> int | None:
        if frame.pts is None or self._rate is None or frame.time_base is None:
            return None
        return round((frame.pts - self._start) * frame.time_base * self._rate)

    def _decode(self, wanted: list[int], seek: bool) -> dict[int, np.ndarray] | None:
        """Decode forward, assigning each wanted index the first frame at or after it.

        Frames are numbered by their timestamps (by decoding order when they
        have none). Returns ``None`` when nothing could be decoded, or when
        after a seek the position is unknown or past the first wanted frame
        (the caller then decodes from the start).
        """
        if seek:
            # The nominal timestamp of the first wanted frame, exact (fractions).
            target = self._start + math.floor(wanted[0] / self._rate / self._stream.time_base)
            try:
                self._container.seek(max(target, self._start), stream=self._stream, backward=True)
            except av.error.FFmpegError:
                return None
            self._fresh = False
        else:
            self._rewind()
        out: dict[int, np.ndarray] = {}
        last: av.VideoFrame | None = None
        k = 0
        for counter, frame in enumerate(self._packets_decoded()):
            index = self._index(frame)
            if index is None:
                if seek:
                    return None
                index = counter
            if seek and last is None and index > wanted[0]:
                return None  # landed past the clip start
            last = frame
            if index < wanted[k]:
                continue
            image = self._convert(frame)
            while k < len(wanted) and wanted[k] <= index:
                out[wanted[k]] = image
                k += 1
            if k == len(wanted):
                return out
        if last is None:
            return None
        image = self._convert(last)
        for i in wanted[k:]:
            out[i] = image
        return out

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame from the first, in presentation order, as uint8 ``[H, W, 3]`` (resized to
        ``size``): the sequential read of a stream (one decode, no seeks)."""
        self._rewind()
        for frame in self._packets_decoded():
            yield self._convert(frame)

    def _packets_decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded frames in presentation order; a packet the codec rejects as invalid is skipped."""
        self._fresh = False
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet: its frame is missing, the timestamps of the rest hold
                for frame in frames:
                    self.frames_decoded += 1
                    yield frame
        except av.error.FFmpegError as err:
            raise VideoDecodeError(f"cannot decode '{self.path}': {err}") from None

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        if self.size is None:
            return frame.to_ndarray(format="rgb24")
        height, width = self.size
        return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BILINEAR")

    # ------------------------------------------------------------ lifetime
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoDecoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def clip_indices(
    num_frames: int,
    clip_len: int = 16,
    step: int = 1,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[int]:
    """Frame indices of one clip of ``clip_len`` frames, ``step`` apart.

    Training draws the start uniformly among all starts that fit; evaluation
    takes the centred clip, start ``(num_frames - span) // 2`` with
    ``span = (clip_len - 1) * step + 1``. A video shorter than ``span`` is
    looped: the clip starts at frame 0 and index ``i * step`` wraps around
    (``mod num_frames``), so a 10-frame video gives 0..9, 0..5 for 16 frames.
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if clip_len < 1 or step < 1:
        raise ValueError(f"clip_len and step must be positive, got {clip_len} and {step}")
    span = (clip_len - 1) * step + 1
    if num_frames < span:
        return [(i * step) % num_frames for i in range(clip_len)]
    if train:
        start = int(torch.randint(0, num_frames - span + 1, (), generator=generator))
    else:
        start = (num_frames - span) // 2
    return [start + i * step for i in range(clip_len)]


def read_clip(
    path: str,
    clip_len: int = 16,
    step: int = 1,
    train: bool = False,
    size: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Decode one clip of a video (see :func:`clip_indices`): uint8 ``[clip_len, H, W, 3]``."""
    with VideoDecoder(path, size=size) as decoder:
        indices = clip_indices(decoder.num_frames, clip_len, step, train, generator)
        return decoder.read(indices)

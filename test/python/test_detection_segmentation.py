"""The 2D applications' pieces: the detection and segmentation data sets, the YOLO-style detector
(its decoding, NMS and loss) and the U-Net, mAP and Dice, and both nets compiled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import compile_checked, kernel_profile, randomize_batch_norms

from rt3d_mlir.boxes import box_iou, nms
from rt3d_mlir.data.detection import MAX_OVERLAP, SyntheticDetection, detection_collate
from rt3d_mlir.data.metrics import average_precision, dice
from rt3d_mlir.data.segmentation import STRUCTURES, SyntheticVolumes, VolumeSlices, volume_slices
from rt3d_mlir.models.unet import UNet2d
from rt3d_mlir.models.yolo import STRIDES, TinyYolo, decode, detect, detection_loss, grid
from rt3d_mlir.pruning.hard_prune import hard_prune
from rt3d_mlir.pruning.schemes import SparsityScheme


def test_detection_images_are_deterministic_and_their_boxes_tight():
    data = SyntheticDetection(16, seed=3)
    again = SyntheticDetection(16, seed=3)
    other = SyntheticDetection(16, seed=3, split="val")
    for i in range(16):
        image, target = data[i]
        assert torch.equal(image, again[i][0]) and not torch.equal(image, other[i][0])
        boxes, labels = target["boxes"].numpy(), target["labels"].numpy()
        assert image.shape == (3, 64, 64) and len(boxes) == len(labels) >= 1
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 64).all() and (boxes[:, 3] <= 64).all()
        assert (boxes[:, 2:] - boxes[:, :2] >= 3).all() and (labels < 5).all()
        overlaps = box_iou(boxes, boxes)[~np.eye(len(boxes), dtype=bool)]
        assert (overlaps <= MAX_OVERLAP).all()
    images, targets = detection_collate([data[0], data[1]])
    assert images.shape == (2, 3, 64, 64) and len(targets) == 2


def test_decoding_inverts_the_parametrization_and_nms_keeps_the_best_box():
    """An output built for a known box at the stride-8 cell holding its centre decodes to it; a
    duplicate at the next cell is suppressed; mAP is 1 for exact detections and drops with misses."""
    size = (64, 64)
    cells, _ = grid(size)
    assert len(cells) == sum((64 // s) ** 2 for s in STRIDES)
    output = np.full((1, 5 + 3, len(cells)), -10.0, np.float32)

    def logit(p: float) -> float:
        return float(np.log(p / (1 - p)))

    box = np.array([20.0, 12.0, 36.0, 24.0])  # centre (28, 18): stride-8 cell (3, 2), size 16 x 12
    for a, score in ((2 * 8 + 3, 0.9), (2 * 8 + 4, 0.6)):
        output[0, 0][a] = logit((28 / 8 - cells[a][0] + 0.5) / 2)
        output[0, 1][a] = logit((18 / 8 - cells[a][1] + 0.5) / 2)
        output[0, 2][a] = logit(np.sqrt(16 / 16) / 2)
        output[0, 3][a] = logit(np.sqrt(12 / 16) / 2)
        output[0, 4][a] = logit(score)
        output[0, 5 + 1][a] = 10.0
    boxes, scores, labels = decode(output, size)
    np.testing.assert_allclose(boxes[0, 2 * 8 + 3], box, atol=1e-3)
    assert labels[0, 2 * 8 + 3] == 1 and abs(scores[0, 2 * 8 + 3] - 0.9) < 1e-3
    assert list(nms(boxes[0], scores[0], 0.5))[:1] == [2 * 8 + 3]
    found = detect(output, size)[0]
    assert len(found["boxes"]) == 1 and found["labels"][0] == 1
    truth = [{"boxes": box[None], "labels": np.array([1])}]
    assert average_precision([found], truth, 3) == pytest.approx(1.0)
    shifted = {**found, "boxes": found["boxes"] + 10.0}  # IoU below 0.5: a false positive
    assert average_precision([shifted], truth, 3) == 0.0


def test_the_detector_learns_the_objects_it_trains_on():
    """The loss and the decoding agree: trained on 16 images for 100 steps, the detector finds
    their objects (mAP@0.5 on them above 0.5; untrained it is near 0)."""
    torch.manual_seed(0)
    model = TinyYolo(num_classes=5, width=0.25)
    images, targets = detection_collate([SyntheticDetection(16, seed=1)[i] for i in range(16)])
    truths = [{key: value.numpy() for key, value in t.items()} for t in targets]

    def score() -> float:
        model.eval()
        with torch.no_grad():
            found = detect(model(images).numpy(), (64, 64), score=0.05)
        model.train()
        return average_precision(found, truths, 5)

    before = score()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(100):
        chosen = torch.arange(8) + 8 * (step % 2)
        optimizer.zero_grad()
        loss = detection_loss(model(images[chosen]), [targets[i] for i in chosen], (64, 64))
        loss.backward()
        optimizer.step()
    assert before < 0.1 < 0.5 < score()


def test_volumes_are_deterministic_with_every_structure():
    data = SyntheticVolumes(4, depth=12, height=48, width=48, seed=2)
    volume, labels = data[1]
    assert volume.shape == (1, 12, 48, 48) and labels.shape == (12, 48, 48)
    assert torch.equal(volume, data[1][0]) and not torch.equal(volume, data[2][0])
    counts = np.bincount(labels.numpy().ravel(), minlength=len(STRUCTURES))
    assert (counts > 0).all()
    assert abs(float(volume.mean())) < 1.0 and 0.3 < float(volume.std()) < 2.0
    assert volume_slices(volume).shape == (12, 1, 48, 48)


def test_the_segmentation_loss_counts_the_foreground():
    """Cross entropy plus soft Dice: predicting all background where there is foreground costs the
    Dice term (about 1), predicting the labels costs almost nothing."""
    from rt3d_mlir.pruning.tasks import soft_dice_loss, task_of

    labels = torch.zeros(2, 8, 8, dtype=torch.int64)
    labels[:, 2:4, 2:5] = 1
    labels[:, 6, :] = 2
    right = F.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 20.0
    background = torch.zeros(2, 3, 8, 8)
    background[:, 0] = 20.0
    assert float(soft_dice_loss(right, labels)) < 0.05
    assert float(soft_dice_loss(background, labels)) > 0.9
    task = task_of(VolumeSlices(SyntheticVolumes(1, depth=8, height=16, width=16)))
    assert task.name == "segmentation"
    assert float(task.loss(background, labels, background)) > float(task.loss(right, labels, right)) + 0.9


def test_dice():
    truth = np.array([[0, 1, 1], [2, 2, 0]])
    assert dice(truth, truth, 3) == 1.0
    predicted = np.array([[0, 1, 0], [2, 0, 0]])  # lesion 2/3, vessel 2/3
    assert dice(predicted, truth, 3) == pytest.approx(2 / 3)


@pytest.mark.parametrize("target", ["host", "aarch64", "spirv"])
def test_the_detector_and_the_unet_compile_on_every_target(target, tmp_path):
    torch.manual_seed(0)
    for name, model, x in (
        ("yolo", TinyYolo(num_classes=3, width=0.25, input_size=(32, 32)), torch.randn(1, 3, 32, 32)),
        ("unet", UNet2d(width=0.25, depth=2), torch.randn(1, 1, 16, 16)),
    ):
        randomize_batch_norms(model)
        model.eval()
        compile_checked(model, x, tmp_path / f"{name}.{target}", target=target)


def test_a_block_pruned_detector_computes_its_kept_weights(tmp_path):
    torch.manual_seed(0)
    model = TinyYolo(num_classes=5, width=0.5)
    randomize_batch_norms(model)
    model.eval()
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels >= 16]
    hard_prune(model, SparsityScheme("block", (16, 16)), {name: 2.6 for name in convs[1:]})
    x = torch.randn(1, 3, 64, 64)
    compiled = compile_checked(model, x, tmp_path / "yolo.so")
    profile = [p for p in kernel_profile(compiled, x) if p.name.startswith("rt3d_conv")]
    kept = sum(p.flops for p in profile) / sum(p.dense_flops for p in profile)
    assert kept < 0.6


def test_coco_style_annotations_load_like_the_built_in_set(tmp_path):
    """A COCO JSON over two PNG images: resized to 32x32 with their boxes, categories in id order,
    crowd annotations and images without boxes left out; a bad file is one clear error."""
    import json

    from PIL import Image

    from rt3d_mlir.data.formats import CocoDetection
    from rt3d_mlir.errors import Rt3dError

    for name, size in (("a.png", (64, 48)), ("b.png", (32, 32)), ("c.png", (16, 16))):
        Image.new("RGB", size, (200, 10, 10)).save(tmp_path / name)
    annotations = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"},
                   {"id": 3, "file_name": "c.png"}],
        "categories": [{"id": 7, "name": "car"}, {"id": 3, "name": "person"}],
        "annotations": [
            {"image_id": 1, "bbox": [8, 12, 16, 24], "category_id": 7},
            {"image_id": 1, "bbox": [0, 0, 4, 4], "category_id": 3, "iscrowd": 1},
            {"image_id": 2, "bbox": [4, 4, 8, 8], "category_id": 3},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(annotations))
    data = CocoDetection(str(tmp_path), str(path), size=(32, 32))
    assert len(data) == 2 and data.classes == ["person", "car"]
    image, target = data[0]
    assert image.shape == (3, 32, 32)
    np.testing.assert_allclose(target["boxes"].numpy(), [[4, 8, 12, 24]])  # x / 2, y / 1.5
    assert target["labels"].tolist() == [1]
    assert data[1][1]["labels"].tolist() == [0]
    from rt3d_mlir.data import build_dataset

    spec = f"coco:{tmp_path}:train=instances.json:val=instances.json:size=[32,32]"
    assert len(build_dataset(spec, train=False)) == 2
    path.write_text("{")
    with pytest.raises(Rt3dError, match="not valid JSON"):
        CocoDetection(str(tmp_path), str(path))


def test_nifti_volumes_load_like_the_built_in_set(tmp_path):
    import nibabel

    from rt3d_mlir.data.formats import NiftiVolumes
    from rt3d_mlir.errors import Rt3dError

    volume = np.random.default_rng(0).normal(size=(20, 16, 8)).astype(np.float32)  # x, y, z
    labels = np.zeros((20, 16, 8), np.uint8)
    labels[5:9, 4:7, 2:4] = 2
    for name, array in (("v.nii.gz", volume), ("l.nii.gz", labels)):
        nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), str(tmp_path / name))
    data = NiftiVolumes([(str(tmp_path / "v.nii.gz"), str(tmp_path / "l.nii.gz"))], num_classes=3)
    x, y = data[0]
    assert x.shape == (1, 8, 16, 20) and y.shape == (8, 16, 20)  # (D, H, W) = (z, y, x)
    assert abs(float(x.mean())) < 1e-5 and int((y == 2).sum()) == 4 * 3 * 2
    with pytest.raises(Rt3dError, match="labels outside"):
        NiftiVolumes([(str(tmp_path / "v.nii.gz"), str(tmp_path / "l.nii.gz"))], num_classes=2)[0]

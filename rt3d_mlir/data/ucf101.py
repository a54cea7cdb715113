"""UCF101 (Soomro et al., 2012) in its published layout, with the official splits.

Layout::

    ROOT/<ClassName>/v_<ClassName>_gXX_cYY.avi
    ROOT/ucfTrainTestlist/classInd.txt        "1 ApplyEyeMakeup" per line
    ROOT/ucfTrainTestlist/trainlist0{1,2,3}.txt  "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist0{1,2,3}.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

Labels are the class ids of ``classInd.txt`` minus one (0-based).
"""

from __future__ import annotations

import os
from typing import Any

from rt3d_mlir.data.clips import VideoClipDataset, check_split_number, require_path, require_videos

SPLIT_DIR = "ucfTrainTestlist"


def read_class_index(path: str) -> list[str]:
    """Class names in label order from ``classInd.txt`` (ids must be 1..N)."""
    entries: dict[int, str] = {}
    with open(require_path(path, "UCF101 class index")) as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{path}:{number}: expected '<id> <ClassName>', got '{line.strip()}'")
            entries[int(parts[0])] = parts[1]
    if sorted(entries) != list(range(1, len(entries) + 1)):
        raise ValueError(f"{path}: class ids must be 1..N without gaps")
    return [entries[i] for i in range(1, len(entries) + 1)]


def read_split_list(path: str, root: str, classes: list[str]) -> list[tuple[str, int]]:
    """``(video path, label)`` for every line of a train or test list.

    The label comes from the class folder of each entry; a train list's
    explicit 1-based label must agree with it.
    """
    labels = {name: i for i, name in enumerate(classes)}
    samples = []
    with open(require_path(path, "UCF101 split file")) as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            relative = parts[0]
            name = relative.replace("\\", "/").split("/")[0]
            if name not in labels:
                raise ValueError(f"{path}:{number}: class '{name}' is not in classInd.txt")
            label = labels[name]
            if len(parts) > 1 and (not parts[1].isdigit() or int(parts[1]) - 1 != label):
                raise ValueError(
                    f"{path}:{number}: label {parts[1]} disagrees with class '{name}' (id {label + 1})"
                )
            samples.append((os.path.join(root, relative), label))
    return samples


class UCF101(VideoClipDataset):
    """UCF101 clips of one official split.

    Args:
        root: the folder holding the 101 class folders.
        split: official split 1, 2 or 3.
        train: the split's training list (random clips and crops) or its
            test list (centred clips and crops).
        split_dir: folder of the split files (default ``ROOT/ucfTrainTestlist``).
        check_files: check at construction that every listed video exists.
        **clip_options: :class:`VideoClipDataset` options (``frames``,
            ``step``, ``resize``, ``crop``, ``hflip``, ``mean``, ``std``).
    """

    def __init__(
        self,
        root: str,
        split: int = 1,
        train: bool = True,
        split_dir: str | None = None,
        check_files: bool = True,
        **clip_options: Any,
    ) -> None:
        root = require_path(os.fspath(root), "UCF101 root", directory=True)
        split = check_split_number(split)
        split_dir = split_dir or os.path.join(root, SPLIT_DIR)
        require_path(split_dir, "UCF101 split folder", directory=True)
        classes = read_class_index(os.path.join(split_dir, "classInd.txt"))
        list_file = os.path.join(split_dir, f"{'train' if train else 'test'}list0{split}.txt")
        samples = read_split_list(list_file, root, classes)
        if check_files:
            require_videos(samples, list_file, root)
        super().__init__(samples, classes, train=train, **clip_options)
        self.root = root
        self.split = split

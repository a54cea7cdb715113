"""HMDB51 (Kuehne et al., 2011) in its published layout, with the official splits.

Layout::

    ROOT/<class>/<video>.avi
    ROOT/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   "<video>.avi <id>" per line

where id 1 marks a training video, 2 a test video and 0 a video unused in
that split. Classes are the split files' class names, sorted alphabetically;
labels are their positions (0-based).
"""

from __future__ import annotations

import os
import re
from typing import Any

from rt3d_mlir.data.clips import VideoClipDataset, check_split_number, require_path, require_videos

SPLIT_DIR = "testTrainMulti_7030_splits"
_SPLIT_FILE = re.compile(r"^(?P<name>.+)_test_split(?P<split>[123])\.txt$")
TRAIN_ID, TEST_ID = 1, 2


def find_classes(split_dir: str) -> list[str]:
    """Class names, sorted, from the split files of any split in ``split_dir``."""
    names = {m.group("name") for m in map(_SPLIT_FILE.match, os.listdir(split_dir)) if m}
    if not names:
        raise FileNotFoundError(f"no HMDB51 split files '<class>_test_split<n>.txt' in '{split_dir}'")
    return sorted(names)


def read_split_file(path: str, root: str, name: str, label: int, wanted_id: int) -> list[tuple[str, int]]:
    """``(video path, label)`` of the videos marked ``wanted_id`` in one class's split file."""
    samples = []
    with open(require_path(path, "HMDB51 split file")) as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}:{number}: expected '<video>.avi <0|1|2>', got '{line.strip()}'")
            if int(parts[1]) == wanted_id:
                samples.append((os.path.join(root, name, parts[0]), label))
    return samples


class HMDB51(VideoClipDataset):
    """HMDB51 clips of one official split.

    Args:
        root: the folder holding the 51 class folders.
        split: official split 1, 2 or 3.
        train: the videos marked 1 (random clips and crops) or those marked
            2 (centred clips and crops) in the split files.
        split_dir: folder of the split files (default
            ``ROOT/testTrainMulti_7030_splits``).
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
        root = require_path(os.fspath(root), "HMDB51 root", directory=True)
        split = check_split_number(split)
        split_dir = split_dir or os.path.join(root, SPLIT_DIR)
        require_path(split_dir, "HMDB51 split folder", directory=True)
        classes = find_classes(split_dir)
        samples: list[tuple[str, int]] = []
        for label, name in enumerate(classes):
            split_file = os.path.join(split_dir, f"{name}_test_split{split}.txt")
            class_samples = read_split_file(split_file, root, name, label, TRAIN_ID if train else TEST_ID)
            if check_files:
                require_videos(class_samples, split_file, root)
            samples += class_samples
        super().__init__(samples, classes, train=train, **clip_options)
        self.root = root
        self.split = split

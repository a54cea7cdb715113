"""Build one side of a before/after comparison with the code checked out now.

    .venv/bin/python bench/ab_build.py TAG DIR MODEL@VARIANT[@PRECISION] [...]

Writes DIR/TAG-MODEL-VARIANT[-PRECISION].so for each (full size, 1x3x16x112x112, the bench's seeds and
random masks; VARIANT as for ``rt3d-bench``, PRECISION as for ``rt3d-compile``, default fp32; int8
with scales calibrated on the example clip: they change the numbers, not the work).
Build the "old" side at one commit (``git checkout REV --
rt3d_mlir``), the "new" side at another, then time both in one interleaved run with
``bench/ab_time.py DIR``.
"""

from __future__ import annotations

import os
import sys

import torch

from rt3d_mlir.benchmarking import Variant, sparse_variant
from rt3d_mlir.compiler import compile_model
from rt3d_mlir.models import build_model
from rt3d_mlir.quantization import calibrate


def main() -> None:
    tag, out = sys.argv[1], sys.argv[2]
    for spec in sys.argv[3:]:
        model_name, variant_text, *precision = spec.split("@")
        variant = Variant.parse(variant_text)
        torch.manual_seed(0)
        model = build_model(model_name).eval()
        x = torch.randn(1, 3, 16, 112, 112)
        pruned = sparse_variant(model, variant, seed=0)
        suffix = f"-{precision[0]}" if precision else ""
        path = os.path.join(out, f"{tag}-{model_name}-{variant_text.replace(':', '_')}{suffix}.so")
        options = {"precision": precision[0]} if precision else {}
        if precision == ["int8"]:
            options["int8_scales"] = calibrate(pruned, [x])
        compile_model(pruned, x, output=path, group_shape=variant.group_shape, **options)
        print("built", path, flush=True)


if __name__ == "__main__":
    main()

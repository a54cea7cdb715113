"""How far f16 sums drift from exact ones: the reason fp16 convs sum in f16 only per entry.

    .venv/bin/python bench/f16_accumulation.py [--outputs 2000]

For reductions of the sizes a conv adds per output (3x3x3 taps x 64 to
512 channels), products of ReLU-like inputs (|N(0, 1)|) and weights
(N(0, 1/K)), both rounded to f16, are summed three ways: one f16
accumulator over the whole reduction (what a kernel computing in f16
end to end does), f16 sums of runs of 8 or 16 channels added to an f32
accumulator (what rt3d-vectorize does with ``native_f16``), and exactly
(float64). Printed: max |sum - exact| / max |exact| over ``--outputs``
outputs, the measure the tests bound (kernel_packing.MAX_RELATIVE_ERROR).
numpy rounds each f16 operation once (computed in f32, rounded to f16),
as an FMA-less f16 unit would; a fused f16 FMA rounds once per product
and add as well.
"""

from __future__ import annotations

import argparse

import numpy as np


def f16_sum(x: np.ndarray, w: np.ndarray, run: int) -> np.ndarray:
    """Sum x @ w with f16 partial sums over runs of ``run`` terms (0: one f16 sum of all) added
    into an f32 accumulator."""
    total = np.zeros(x.shape[0], np.float32)
    step = run or x.shape[1]
    for k0 in range(0, x.shape[1], step):
        partial = np.zeros(x.shape[0], np.float16)
        for k in range(k0, min(x.shape[1], k0 + step)):
            product = (x[:, k].astype(np.float32) * np.float32(w[k])).astype(np.float16)
            partial = (partial.astype(np.float32) + product.astype(np.float32)).astype(np.float16)
        total += partial.astype(np.float32)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| reduction (K) | one f16 sum | f16 runs of 16 | f16 runs of 8 |")
    print("|---|---|---|---|")
    for channels in (64, 256, 512):
        k = 27 * channels
        x = np.abs(rng.standard_normal((args.outputs, k))).astype(np.float16)
        w = (rng.standard_normal(k) / np.sqrt(k)).astype(np.float16)
        exact = x.astype(np.float64) @ w.astype(np.float64)
        scale = np.abs(exact).max()
        errors = [np.abs(f16_sum(x, w, run) - exact).max() / scale for run in (0, 16, 8)]
        print(f"| 3x3x3x{channels} ({k}) | " + " | ".join(f"{e:.1e}" for e in errors) + " |", flush=True)


if __name__ == "__main__":
    main()

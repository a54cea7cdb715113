#!/usr/bin/env bash
# Issue 4's host benchmark: full-size C3D and R(2+1)D-18, dense and pruned
# variants, against PyTorch (and IREE on representative layers), in one run.
# Needs the [bench] extra for IREE: .venv/bin/pip install -e '.[bench]'
# Takes about 20 minutes on the 2-core machine; writes bench/results/speed.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/rt3d-bench --models c3d,r2plus1d --threads 2 --repeat 7 --warmup 2 --iree-layers \
  --json bench/results/speed.json --markdown bench/results/speed.md "$@"

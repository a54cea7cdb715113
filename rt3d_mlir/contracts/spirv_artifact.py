"""The SPIR-V artifact (``rt3d-compile --target spirv``): format name, version, limits.

The format is described in ``docs/spirv_artifact.md``; the backend writes
it (``rt3d_mlir.backend.spirv_binary``) and the Vulkan runtime reads and
checks it (``rt3d_mlir.runtime.vulkan``).
"""

from __future__ import annotations

FORMAT = "rt3d-spirv"
FORMAT_VERSION = 2
TARGET_ENV = "vulkan1.1"  # what the backend emits
TARGET_ENVS = {"vulkan1.0": (1, 0), "vulkan1.1": (1, 1)}  # what a runtime accepts
INIT_KINDS = ("none", "weights", "zero")
MANIFEST = "manifest.json"
WEIGHTS = "weights.bin"
KERNEL_DIRECTORY = "kernels/"

# Sizes a reader accepts before inflating anything (a ZIP member can claim any size).
MAX_MANIFEST_BYTES = 64 << 20
MAX_MODULE_BYTES = 16 << 20
MAX_MODULES_BYTES = 256 << 20

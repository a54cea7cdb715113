"""The host/AArch64 artifact: a shared object with the rt3d C ABI, and its info section.

Every artifact exports, with C linkage, the functions in
``EXPORTED_SYMBOLS`` (documented in ``rt3d_mlir.backend.abi``, which
generates them) and nothing else, and carries an allocated section named
``INFO_SECTION`` holding one NUL-terminated JSON object::

    {"format": "rt3d-shared-object", "abi": 2, "target": "host",
     "triple": "x86_64-linux-gnu", "cpu": "znver3",
     "features": ["avx", "avx2", "fma", ...], "precision": "bf16"}

``features`` are the instruction-set extensions the compiler was allowed
to use, named as Linux's ``/proc/cpuinfo`` names them (x86 ``flags``,
AArch64 ``Features``), so a loader can check them before running any code;
``precision`` is what the activations between convolutions and their
weights are stored in (``fp32``, ``bf16``, ``fp16``; absent in older records:
fp32).
The section is read from the file (not through ``dlopen``).
"""

from __future__ import annotations

ABI_VERSION = 3  # 3: rt3d_profile_bytes
INFO_FORMAT = "rt3d-shared-object"
INFO_SECTION = ".rt3d_info"
INFO_SYMBOL = "__rt3d_info"
FORWARD_IMPL_SYMBOL = "__rt3d_forward_impl"
EXPORTED_SYMBOLS = (
    "rt3d_abi_version",
    "rt3d_target",
    "rt3d_input_rank",
    "rt3d_input_shape",
    "rt3d_output_rank",
    "rt3d_output_shape",
    "rt3d_forward",
    "rt3d_set_num_threads",
    "rt3d_num_threads",
    "rt3d_set_profiling",
    "rt3d_profile_entries",
    "rt3d_profile_name",
    "rt3d_profile_seconds",
    "rt3d_profile_calls",
    "rt3d_profile_flops",
    "rt3d_profile_dense_flops",
    "rt3d_profile_bytes",
    "rt3d_release_memory",
)
MAX_THREADS = 256  # the glue's thread pool never starts more (a larger request is capped)

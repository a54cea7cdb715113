"""The instruction-set extensions a clang CPU choice enables, named as /proc/cpuinfo names them.

An artifact records them (``rt3d_mlir.contracts.shared_object``) so that a
loader can refuse to run code that would die with "Illegal instruction".
They are read from the predefined macros of ``clang -E -dM`` for the
chosen ``--target`` and ``-march``/``-mcpu``; only extensions that vector
code generation can use are listed (base ISA features every CPU of the
target has are left out).
"""

from __future__ import annotations

import os
import re

from rt3d_mlir.backend.targets import Target
from rt3d_mlir.backend.toolchain import run_tool

# Predefined macro -> Linux /proc/cpuinfo flag.
X86_64_FEATURES = {
    "__SSE3__": "pni",
    "__SSSE3__": "ssse3",
    "__SSE4_1__": "sse4_1",
    "__SSE4_2__": "sse4_2",
    "__SSE4A__": "sse4a",
    "__POPCNT__": "popcnt",
    "__AVX__": "avx",
    "__AVX2__": "avx2",
    "__FMA__": "fma",
    "__FMA4__": "fma4",
    "__F16C__": "f16c",
    "__BMI__": "bmi1",
    "__BMI2__": "bmi2",
    "__MOVBE__": "movbe",
    "__AVX512F__": "avx512f",
    "__AVX512CD__": "avx512cd",
    "__AVX512DQ__": "avx512dq",
    "__AVX512BW__": "avx512bw",
    "__AVX512VL__": "avx512vl",
    "__AVX512IFMA__": "avx512ifma",
    "__AVX512VBMI__": "avx512vbmi",
    "__AVX512VBMI2__": "avx512_vbmi2",
    "__AVX512VNNI__": "avx512_vnni",
    "__AVX512BITALG__": "avx512_bitalg",
    "__AVX512VPOPCNTDQ__": "avx512_vpopcntdq",
    "__AVX512BF16__": "avx512_bf16",
    "__AVX512FP16__": "avx512_fp16",
    "__AVX512VP2INTERSECT__": "avx512_vp2intersect",
    "__AVXVNNI__": "avx_vnni",
    "__AMX_TILE__": "amx_tile",
    "__AMX_BF16__": "amx_bf16",
    "__AMX_INT8__": "amx_int8",
    "__AMX_FP16__": "amx_fp16",
    "__GFNI__": "gfni",
    "__VAES__": "vaes",
    "__VPCLMULQDQ__": "vpclmulqdq",
}
AARCH64_FEATURES = {
    "__ARM_NEON": "asimd",
    "__ARM_FEATURE_FP16_SCALAR_ARITHMETIC": "fphp",
    "__ARM_FEATURE_FP16_VECTOR_ARITHMETIC": "asimdhp",
    "__ARM_FEATURE_DOTPROD": "asimddp",
    "__ARM_FEATURE_QRDMX": "asimdrdm",
    "__ARM_FEATURE_COMPLEX": "fcma",
    "__ARM_FEATURE_FP16_FML": "asimdfhm",
    "__ARM_FEATURE_BF16_VECTOR_ARITHMETIC": "bf16",
    "__ARM_FEATURE_MATMUL_INT8": "i8mm",
    "__ARM_FEATURE_SVE": "sve",
    "__ARM_FEATURE_SVE2": "sve2",
    "__ARM_FEATURE_SME": "sme",
}
_TABLES = {"x86_64": X86_64_FEATURES, "aarch64": AARCH64_FEATURES}
_TARGET_CPU = re.compile(r'"-target-cpu"\s+"([^"]+)"')


def cpu_features(clang: str, target: Target, cpu: str) -> tuple[str, list[str]]:
    """(the CPU name clang resolves ``cpu`` to, the cpuinfo names of the extensions it enables)."""
    arch = target.triple.split("-")[0]
    table = _TABLES.get(arch, {})
    base = [clang, f"--target={target.triple}", f"{target.cpu_flag}={cpu}", "-x", "c"]
    macros = run_tool([*base, "-E", "-dM", os.devnull], "reading the CPU's features")
    defined = {line.split()[1] for line in macros.splitlines() if line.startswith("#define ")}
    driver = run_tool([*base, "-###", "-c", os.devnull, "-o", os.devnull], "reading the CPU's name")
    found = _TARGET_CPU.search(driver)
    features = sorted(flag for macro, flag in table.items() if macro in defined)
    return (found.group(1) if found else cpu), features

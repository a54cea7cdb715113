"""``load``: one entry point for every artifact kind, each checked before it runs.

A shared object for this machine is a :class:`~rt3d_mlir.runtime.shared_object.CompiledModel`
(ctypes), one for AArch64 runs under qemu (:class:`~rt3d_mlir.runtime.emulated.EmulatedModel`),
and a SPIR-V artifact (a ZIP) runs on a Vulkan device
(:class:`~rt3d_mlir.runtime.vulkan.VulkanModel`). All three have the same call interface.
"""

from __future__ import annotations

import os
import platform

from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.runtime.elf import is_elf
from rt3d_mlir.runtime.emulated import EmulatedModel
from rt3d_mlir.runtime.shared_object import CompiledModel, verify_artifact
from rt3d_mlir.runtime.spirv_artifact import is_zip
from rt3d_mlir.runtime.vulkan import VulkanModel


def load(
    path: str | os.PathLike[str], threads: int | None = None, device: int | str | None = None
) -> CompiledModel | EmulatedModel | VulkanModel:
    """Load a compiled artifact; the result maps a numpy input to a numpy output.

    ``threads`` sets how many threads its kernels use (default: the
    ``RT3D_NUM_THREADS`` environment variable, else all CPUs). The setting
    belongs to the loaded library, so it is shared by every ``load`` of the
    same file in one process. An artifact for another architecture
    (AArch64 on an x86-64 host) runs under qemu through a small harness
    (:mod:`rt3d_mlir.runtime.emulated`): same interface, slower.

    A SPIR-V artifact (a ZIP, ``docs/spirv_artifact.md``) runs on a Vulkan
    device (:mod:`rt3d_mlir.runtime.vulkan`): ``device`` is an index or part
    of the device's name (default: the first GPU, else the first device);
    ``threads`` is ignored for it, and ``device`` applies to nothing else.

    Every artifact is checked before it is mapped or dispatched
    (:func:`verify_artifact`; the SPIR-V manifest against its kernels).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ArtifactError(f"artifact '{path}' does not exist")
    if os.path.isfile(path) and not is_elf(path) and is_zip(path):
        return VulkanModel(path, device=device)
    if device is not None:
        raise ArtifactError(f"'{path}' is not a SPIR-V artifact: a Vulkan device applies only to those")
    info = verify_artifact(path)
    if info.machine != platform.machine():
        if info.machine != "aarch64":
            raise ArtifactError(f"'{path}' was built for {info.machine}, which this runtime cannot run here")
        return EmulatedModel(path, threads=threads)
    return CompiledModel(path, threads=threads)

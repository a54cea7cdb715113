"""Running compiled artifacts. Imports only numpy (and, for SPIR-V artifacts, the ``vulkan``
package when one is loaded): deployable without the compiler."""

from rt3d_mlir.runtime.emulated import EmulatedModel
from rt3d_mlir.runtime.loader import load
from rt3d_mlir.runtime.profile import KernelProfile
from rt3d_mlir.runtime.shared_object import CompiledModel
from rt3d_mlir.runtime.vulkan import VulkanModel, vulkan_devices

__all__ = ["CompiledModel", "EmulatedModel", "KernelProfile", "VulkanModel", "load", "vulkan_devices"]

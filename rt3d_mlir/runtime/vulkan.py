"""Run SPIR-V artifacts (``rt3d-compile --target spirv``) on a Vulkan device.

The artifact format is described in ``docs/spirv_artifact.md``: a ZIP with a
``manifest.json`` dispatch program, one SPIR-V module per kernel and the
constant data in ``weights.bin``. This module needs numpy and the ``vulkan``
package (a cffi binding of the system's ``libvulkan.so.1`` loader), which it
imports only when a model is loaded.

Design, all done once at load time:

* one Vulkan instance, one physical device (chosen by ``device``: an index or
  part of the name; by default the first GPU, else the first device), one
  logical device with one compute queue;
* one ``VkBuffer`` + allocation per manifest buffer, in ``DEVICE_LOCAL``
  memory where the device has such a type. ``"weights"`` buffers are
  uploaded and ``"zero"`` buffers zero-filled through a staging buffer of at
  most ``_STAGING_BYTES`` (``vkCmdCopyBuffer`` / ``vkCmdFillBuffer``, in as
  many submissions as the staging size needs); ``weights.bin`` is memory
  mapped straight from the (stored) ZIP entry, so a 300 MB file is not
  copied in host memory first;
* one compute pipeline per kernel (the ``.spv`` bytes unchanged, set 0 with
  ``bindings`` storage buffers), one descriptor set per dispatch;
* ONE command buffer holding the whole inference: copy the input from a
  persistently mapped staging buffer, a transfer->compute barrier, every
  dispatch with a compute->compute barrier between consecutive ones, a
  compute->transfer barrier, copy the output into a mapped read-back buffer
  and a transfer->host barrier.

A call then writes the input into the mapped memory, submits that command
buffer, waits on a fence and copies the output out (numpy copies through the
mapped pointers, no Python loops). With profiling on, a second command buffer
that also writes a timestamp after every dispatch is submitted instead, and
:meth:`VulkanModel.kernel_profile` reports the GPU time of each dispatch.

cffi pitfall: structures built by the ``vulkan`` package only keep what they
point to alive while the Python object lives, so every create-info and every
handle array is kept in a local variable or on the model while Vulkan may
read it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rt3d_mlir.contracts.spirv_artifact import TARGET_ENVS
from rt3d_mlir.errors import ArtifactError
from rt3d_mlir.runtime.arrays import checked_input, checked_threads, output_array
from rt3d_mlir.runtime.profile import KernelProfile
from rt3d_mlir.runtime.spirv_artifact import read_artifact

INSTANCE_API = (1, 1)  # the Vulkan version the runtime's instance asks for
# the device features an artifact's capabilities may need (runtime.spirv_artifact.FEATURE_CAPABILITIES):
# the extension that brings each, and the Vulkan version it became core in
FEATURE_EXTENSIONS = {
    "shaderFloat16": ("VK_KHR_shader_float16_int8", (1, 2)),
    "storageBuffer16BitAccess": ("VK_KHR_16bit_storage", (1, 1)),
    "shaderIntegerDotProduct": ("VK_KHR_shader_integer_dot_product", (1, 3)),
}
NO_DEVICE_HINT = "install Mesa's lavapipe (apt-get install mesa-vulkan-drivers) or a GPU driver"

_STAGING_BYTES = 64 << 20  # upload chunk for weights (the staging buffer's size at most)
_UINT64_MAX = (1 << 64) - 1
# Physical device types, and the default's order of preference (GPUs first, CPU last).
_DEVICE_TYPES = {0: "other", 1: "integrated GPU", 2: "discrete GPU", 3: "virtual GPU", 4: "CPU"}
_PREFERENCE = {2: 0, 1: 1, 3: 2, 0: 3, 4: 4}


# --------------------------------------------------------------------------- devices


def _vk() -> ModuleType:
    """The ``vulkan`` package (importing it loads libvulkan.so.1)."""
    try:
        import vulkan
    except OSError:
        raise ArtifactError(
            "cannot load the Vulkan loader libvulkan.so.1 (Debian: apt-get install libvulkan1)"
        ) from None
    except ImportError as err:
        raise ArtifactError(
            f"the 'vulkan' Python package is not usable ({err}); pip install vulkan==1.3.275.1"
        ) from None
    return vulkan


def _create_instance(vk: ModuleType) -> Any:
    app = vk.VkApplicationInfo(
        pApplicationName="rt3d-mlir", pEngineName="rt3d-mlir", apiVersion=vk.VK_MAKE_VERSION(*INSTANCE_API, 0)
    )
    info = vk.VkInstanceCreateInfo(pApplicationInfo=app)
    try:
        return vk.vkCreateInstance(info, None)
    except (vk.VkErrorIncompatibleDriver, vk.VkErrorInitializationFailed):  # the loader found no driver
        raise ArtifactError(f"no Vulkan device: {NO_DEVICE_HINT}") from None


@dataclass(frozen=True)
class _PhysicalDevice:
    handle: Any
    name: str
    kind: int  # VkPhysicalDeviceType
    properties: Any

    def __str__(self) -> str:
        return f"{self.name} ({_DEVICE_TYPES.get(self.kind, 'other')})"


def _physical_devices(vk: ModuleType, instance: Any) -> list[_PhysicalDevice]:
    try:
        handles = list(vk.vkEnumeratePhysicalDevices(instance))
    except vk.VkErrorInitializationFailed:
        handles = []
    devices = []
    for handle in handles:
        props = vk.vkGetPhysicalDeviceProperties(handle)
        devices.append(_PhysicalDevice(handle, str(props.deviceName), int(props.deviceType), props))
    return devices


def vulkan_devices() -> list[str]:
    """The Vulkan devices, as ``"name (type)"`` in index order; empty when the loader finds none."""
    vk = _vk()
    try:
        instance = _create_instance(vk)
    except ArtifactError:
        return []
    try:
        return [str(d) for d in _physical_devices(vk, instance)]
    finally:
        vk.vkDestroyInstance(instance, None)


def _select_device(devices: list[_PhysicalDevice], selector: int | str | None) -> _PhysicalDevice:
    """By index, by a case-insensitive part of ``"name (type)"``, or the first GPU by default."""
    if not devices:
        raise ArtifactError(f"no Vulkan device: {NO_DEVICE_HINT}")
    if selector is None:
        return min(devices, key=lambda d: _PREFERENCE.get(d.kind, 3))  # min is stable: first of a kind
    text = str(selector).strip()
    if text.isdigit():
        if int(text) < len(devices):
            return devices[int(text)]
    else:
        for device in devices:
            if text and text.casefold() in str(device).casefold():
                return device
    available = "; ".join(f"{i}: {d}" for i, d in enumerate(devices))
    raise ArtifactError(f"no Vulkan device matches '{selector}' (available: {available})")


# --------------------------------------------------------------------------- the model


class VulkanModel:
    """A SPIR-V artifact loaded on a Vulkan device: call it with a float32 array of ``input_shape``.

    ``device`` picks the physical device (see :func:`vulkan_devices`): an
    index or part of its name; default the first GPU, else the first device.
    Calls from several threads are serialised. Use as a context manager or
    call :meth:`close` to free the device memory early.
    """

    def __init__(
        self, path: str | os.PathLike[str], device: int | str | None = None, threads: int | None = None
    ) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._device: Any = None
        self._instance: Any = None
        self._allocations: list[tuple[Any, Any]] = []  # (VkBuffer, VkDeviceMemory), device and staging
        self._destroy: list[tuple[str, Any]] = []  # (vkDestroy* name, handle), destroyed in reverse
        self._profiled_cmd: Any = None
        self._query_pool: Any = None
        self._profiling = False
        artifact = read_artifact(self.path)
        program, modules, weights = artifact.program, artifact.modules, artifact.weights
        self._program = program
        self._features = artifact.features  # device features the kernels need (fp16 builds)
        self.input_shape: tuple[int, ...] = program.input_shape
        self.output_shape: tuple[int, ...] = program.output_shape
        self.precision: str = program.precision  # of the activations between convs (the manifest's)
        self._vk = vk = _vk()
        stage = "creating the Vulkan instance"
        try:
            self._instance = _create_instance(vk)
            stage = "opening the device"
            self._open_device(device)
            stage = "allocating buffers"
            self._create_buffers()
            stage = "uploading the weights"
            self._upload(weights)
            del weights  # unmap weights.bin
            stage = "creating the pipelines"
            self._create_pipelines(modules)
            stage = "recording the command buffer"
            self._cmd = self._record(timestamps=False)
        except BaseException as err:
            self.close()
            if isinstance(err, (vk.VkError, vk.VkException)):
                raise self._vulkan_error(err, stage) from None
            raise
        self._profile_seconds = np.zeros(len(program.dispatches))
        self._profile_calls = 0
        if threads is not None:
            self.threads = threads

    # ----------------------------------------------------------------- set-up

    def _vulkan_error(self, err: Exception, stage: str) -> ArtifactError:
        vk = self._vk
        if isinstance(err, vk.VkErrorOutOfDeviceMemory):
            need = sum(b.bytes for b in self._program.buffers) / 2**20
            return ArtifactError(
                f"out of device memory on {getattr(self, 'device_name', 'the Vulkan device')} while {stage} "
                f"('{self.path}' needs {need:.0f} MiB of buffers)"
            )
        if isinstance(err, vk.VkErrorOutOfHostMemory):
            return ArtifactError(f"out of host memory while {stage} for '{self.path}'")
        return ArtifactError(f"Vulkan error {type(err).__name__} while {stage} for '{self.path}'")

    def _open_device(self, selector: int | str | None) -> None:
        vk = self._vk
        chosen = _select_device(_physical_devices(vk, self._instance), selector)
        self._physical = chosen.handle
        self.device_name: str = str(chosen)
        props = chosen.properties
        api = int(props.apiVersion)
        need = TARGET_ENVS[self._program.target_env]
        if (api >> 22, (api >> 12) & 0x3FF) < need:
            raise ArtifactError(
                f"{self.device_name} supports Vulkan {api >> 22}.{(api >> 12) & 0x3FF}, but '{self.path}' "
                f"needs {self._program.target_env}"
            )
        self._check_limits(props.limits)
        families = vk.vkGetPhysicalDeviceQueueFamilyProperties(self._physical)
        compute = [i for i, f in enumerate(families) if f.queueFlags & vk.VK_QUEUE_COMPUTE_BIT]
        if not compute:
            raise ArtifactError(f"{self.device_name} has no compute queue")
        family = min(compute, key=lambda i: families[i].timestampValidBits == 0)  # prefer timestamps
        self._timestamp_bits = int(families[family].timestampValidBits)
        self._timestamp_period = float(props.limits.timestampPeriod)  # nanoseconds per tick
        queue_info = vk.VkDeviceQueueCreateInfo(queueFamilyIndex=family, queueCount=1, pQueuePriorities=[1.0])
        # Out-of-bounds buffer accesses of a kernel then stay inside its buffers (the manifest is
        # checked against the modules' declared sizes either way; see docs/security.md).
        self.robust_buffer_access = bool(vk.vkGetPhysicalDeviceFeatures(self._physical).robustBufferAccess)
        features = vk.VkPhysicalDeviceFeatures(robustBufferAccess=int(self.robust_buffer_access))
        chain, extensions = self._feature_chain(api)
        device_info = vk.VkDeviceCreateInfo(
            pNext=chain, queueCreateInfoCount=1, pQueueCreateInfos=[queue_info], pEnabledFeatures=[features],
            enabledExtensionCount=len(extensions), ppEnabledExtensionNames=extensions,
        )
        self._device = vk.vkCreateDevice(self._physical, device_info, None)
        self._queue = vk.vkGetDeviceQueue(self._device, family, 0)
        memory = vk.vkGetPhysicalDeviceMemoryProperties(self._physical)
        self._memory_types = [int(memory.memoryTypes[i].propertyFlags) for i in range(memory.memoryTypeCount)]
        pool_info = vk.VkCommandPoolCreateInfo(
            flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, queueFamilyIndex=family
        )
        self._command_pool = self._created(
            "vkDestroyCommandPool", vk.vkCreateCommandPool(self._device, pool_info, None)
        )
        self._fence = self._created(
            "vkDestroyFence", vk.vkCreateFence(self._device, vk.VkFenceCreateInfo(), None)
        )

    def _feature_chain(self, api: int) -> tuple[Any, list[str]]:
        """(the pNext chain enabling the device features the kernels need, the device extensions
        that needs); a clear error if the device lacks one (an fp16 build on a device without f16
        arithmetic or 16-bit storage buffers, an int8 build without integer dot products)."""
        if not self._features:
            return None, []
        vk = self._vk
        dot = vk.VkPhysicalDeviceShaderIntegerDotProductFeatures()
        float16 = vk.VkPhysicalDeviceShaderFloat16Int8Features(pNext=dot)
        storage = vk.VkPhysicalDevice16BitStorageFeatures(pNext=float16)
        vk.vkGetPhysicalDeviceFeatures2(self._physical, vk.VkPhysicalDeviceFeatures2(pNext=storage))
        offered = {
            "shaderFloat16": bool(float16.shaderFloat16),
            "storageBuffer16BitAccess": bool(storage.storageBuffer16BitAccess),
            "shaderIntegerDotProduct": bool(dot.shaderIntegerDotProduct),
        }
        names = {str(e.extensionName) for e in vk.vkEnumerateDeviceExtensionProperties(self._physical, None)}
        extensions = []
        # a feature of a later Vulkan version than the instance's and the device's comes with its
        # extension
        version = min((api >> 22, (api >> 12) & 0x3FF), INSTANCE_API)
        for feature in sorted(self._features):
            extension, core = FEATURE_EXTENSIONS[feature]
            if version >= core:
                continue
            if extension not in names:
                offered[feature] = False
            elif extension not in extensions:
                extensions.append(extension)
        missing = sorted(f for f in self._features if not offered.get(f, False))
        if missing:
            raise ArtifactError(
                f"'{self.path}' computes in {self.precision} and needs {' and '.join(missing)}, which "
                f"{self.device_name} does not offer; compile it with --precision fp32 for this device"
            )
        enabled_dot = vk.VkPhysicalDeviceShaderIntegerDotProductFeatures(
            shaderIntegerDotProduct=int("shaderIntegerDotProduct" in self._features)
        )
        enabled_float16 = vk.VkPhysicalDeviceShaderFloat16Int8Features(
            pNext=enabled_dot, shaderFloat16=int("shaderFloat16" in self._features)
        )
        chain = vk.VkPhysicalDevice16BitStorageFeatures(
            pNext=enabled_float16, storageBuffer16BitAccess=int("storageBuffer16BitAccess" in self._features)
        )
        return chain, extensions

    def _check_limits(self, limits: Any) -> None:
        program = self._program
        largest = max(program.buffers, key=lambda b: b.bytes)
        if largest.bytes > int(limits.maxStorageBufferRange):
            raise ArtifactError(
                f"'{self.path}' has a buffer of {largest.bytes} bytes, over {self.device_name}'s storage "
                f"buffer limit of {int(limits.maxStorageBufferRange)} bytes"
            )
        most = max(k.bindings for k in program.kernels.values())
        if most > int(limits.maxPerStageDescriptorStorageBuffers):
            raise ArtifactError(
                f"'{self.path}' has a kernel with {most} bindings; {self.device_name} allows "
                f"{int(limits.maxPerStageDescriptorStorageBuffers)} storage buffers per shader"
            )
        for d in program.dispatches:
            for axis, count in enumerate(d.groups):
                if count > int(limits.maxComputeWorkGroupCount[axis]):
                    raise ArtifactError(
                        f"'{self.path}': dispatch '{d.label}' launches {count} workgroups along axis {axis}; "
                        f"{self.device_name} allows {int(limits.maxComputeWorkGroupCount[axis])}"
                    )

    def _created(self, destroy: str, handle: Any) -> Any:
        """Remember ``handle`` to be destroyed by ``vk.<destroy>`` in :meth:`close`."""
        self._destroy.append((destroy, handle))
        return handle

    def _memory_type(self, allowed: int, required: int, preferred: int) -> int:
        candidates = [
            i
            for i, flags in enumerate(self._memory_types)
            if allowed >> i & 1 and flags & required == required
        ]
        if not candidates:
            raise ArtifactError(f"{self.device_name} has no suitable memory type for a buffer")
        best = [i for i in candidates if self._memory_types[i] & preferred == preferred]
        return (best or candidates)[0]

    def _buffer(self, size: int, usage: int, required: int = 0, preferred: int = 0) -> tuple[Any, Any]:
        """A buffer bound to its own allocation, freed in :meth:`close` (or by :meth:`_free`)."""
        vk = self._vk
        info = vk.VkBufferCreateInfo(size=size, usage=usage, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE)
        buffer = vk.vkCreateBuffer(self._device, info, None)
        self._allocations.append((buffer, None))
        needs = vk.vkGetBufferMemoryRequirements(self._device, buffer)
        kind = self._memory_type(int(needs.memoryTypeBits), required, preferred)
        allocate = vk.VkMemoryAllocateInfo(allocationSize=needs.size, memoryTypeIndex=kind)
        memory = vk.vkAllocateMemory(self._device, allocate, None)
        self._allocations[-1] = (buffer, memory)
        vk.vkBindBufferMemory(self._device, buffer, memory, 0)
        return buffer, memory

    def _free(self, buffer: Any, memory: Any) -> None:
        vk = self._vk
        self._allocations.remove((buffer, memory))
        vk.vkDestroyBuffer(self._device, buffer, None)
        vk.vkFreeMemory(self._device, memory, None)

    def _mapped(self, memory: Any, size: int) -> np.ndarray:
        """A uint8 numpy view of the whole (host-coherent) allocation."""
        return np.frombuffer(self._vk.vkMapMemory(self._device, memory, 0, size, 0), dtype=np.uint8)

    def _create_buffers(self) -> None:
        vk = self._vk
        program = self._program
        usage = (
            vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT
            | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT
            | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT
        )
        local = vk.VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
        self._buffers = [self._buffer(b.bytes, usage, preferred=local)[0] for b in program.buffers]
        host = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
        self._input_bytes = 4 * int(np.prod(program.input_shape, dtype=np.int64))
        self._output_bytes = 4 * int(np.prod(program.output_shape, dtype=np.int64))
        self._input_staging, memory = self._buffer(
            self._input_bytes, vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT, host
        )
        self._input_view = (
            self._mapped(memory, self._input_bytes).view(np.float32).reshape(program.input_shape)
        )
        self._output_staging, memory = self._buffer(
            self._output_bytes,
            vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT,
            host,
            vk.VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
        )
        self._output_view = (
            self._mapped(memory, self._output_bytes).view(np.float32).reshape(program.output_shape)
        )

    def _begin(self) -> Any:
        vk = self._vk
        info = vk.VkCommandBufferAllocateInfo(
            commandPool=self._command_pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY, commandBufferCount=1
        )
        cmd = vk.vkAllocateCommandBuffers(self._device, info)[0]
        vk.vkBeginCommandBuffer(cmd, vk.VkCommandBufferBeginInfo())
        return cmd

    def _submit(self, cmd: Any) -> None:
        """Run a command buffer and wait for it."""
        vk = self._vk
        submit = vk.VkSubmitInfo(commandBufferCount=1, pCommandBuffers=[cmd])
        vk.vkQueueSubmit(self._queue, 1, [submit], self._fence)
        vk.vkWaitForFences(self._device, 1, [self._fence], vk.VK_TRUE, _UINT64_MAX)
        vk.vkResetFences(self._device, 1, [self._fence])

    def _upload(self, weights: np.ndarray) -> None:
        """Fill the "weights" buffers from weights.bin and zero the "zero" ones, through a staging buffer."""
        vk = self._vk
        program = self._program
        pieces = [(i, b) for i, b in enumerate(program.buffers) if b.init == "weights"]
        zeros = [i for i, b in enumerate(program.buffers) if b.init == "zero"]
        if not pieces and not zeros:
            return
        capacity = min(_STAGING_BYTES, sum(b.bytes for _, b in pieces)) or 4
        host = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
        staging, memory = self._buffer(capacity, vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT, host)
        view = self._mapped(memory, capacity)
        cmd = self._begin()
        for i in zeros:
            vk.vkCmdFillBuffer(cmd, self._buffers[i], 0, program.buffers[i].bytes, 0)
        used = 0

        def flush() -> None:
            vk.vkEndCommandBuffer(cmd)
            self._submit(cmd)
            vk.vkResetCommandBuffer(cmd, 0)
            vk.vkBeginCommandBuffer(cmd, vk.VkCommandBufferBeginInfo())

        for i, buffer in pieces:
            done = 0
            while done < buffer.bytes:
                if used == capacity:
                    flush()
                    used = 0
                n = min(buffer.bytes - done, capacity - used)
                view[used : used + n] = weights[buffer.offset + done : buffer.offset + done + n]
                region = vk.VkBufferCopy(srcOffset=used, dstOffset=done, size=n)
                vk.vkCmdCopyBuffer(cmd, staging, self._buffers[i], 1, [region])
                used += n
                done += n
        # The inference command buffer starts with a transfer->compute barrier, which also
        # orders these earlier-submitted transfers before the first dispatch.
        vk.vkEndCommandBuffer(cmd)
        self._submit(cmd)
        vk.vkFreeCommandBuffers(self._device, self._command_pool, 1, [cmd])
        del view
        vk.vkUnmapMemory(self._device, memory)
        self._free(staging, memory)

    def _create_pipelines(self, modules: dict[str, bytes]) -> None:
        vk = self._vk
        program = self._program
        storage = vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
        self._modules = modules  # the code must outlive vkCreateShaderModule (pCode points into it)
        self._pipelines: dict[str, tuple[Any, Any, Any]] = {}  # kernel -> (pipeline, layout, set layout)
        for name, kernel in program.kernels.items():
            code = modules[name]
            module_info = vk.VkShaderModuleCreateInfo(codeSize=len(code), pCode=code)
            module = self._created(
                "vkDestroyShaderModule", vk.vkCreateShaderModule(self._device, module_info, None)
            )
            bindings = [
                vk.VkDescriptorSetLayoutBinding(
                    binding=j,
                    descriptorType=storage,
                    descriptorCount=1,
                    stageFlags=vk.VK_SHADER_STAGE_COMPUTE_BIT,
                )
                for j in range(kernel.bindings)
            ]
            set_info = vk.VkDescriptorSetLayoutCreateInfo(bindingCount=len(bindings), pBindings=bindings)
            set_layout = self._created(
                "vkDestroyDescriptorSetLayout", vk.vkCreateDescriptorSetLayout(self._device, set_info, None)
            )
            layout_info = vk.VkPipelineLayoutCreateInfo(setLayoutCount=1, pSetLayouts=[set_layout])
            layout = self._created(
                "vkDestroyPipelineLayout", vk.vkCreatePipelineLayout(self._device, layout_info, None)
            )
            stage = vk.VkPipelineShaderStageCreateInfo(
                stage=vk.VK_SHADER_STAGE_COMPUTE_BIT, module=module, pName=kernel.entry
            )
            pipeline_info = vk.VkComputePipelineCreateInfo(stage=stage, layout=layout)
            pipeline = vk.vkCreateComputePipelines(self._device, vk.VK_NULL_HANDLE, 1, [pipeline_info], None)[
                0
            ]
            self._pipelines[name] = (self._created("vkDestroyPipeline", pipeline), layout, set_layout)

        count = len(program.dispatches)
        sizes = [
            vk.VkDescriptorPoolSize(
                type=storage, descriptorCount=sum(len(d.buffers) for d in program.dispatches)
            )
        ]
        pool_info = vk.VkDescriptorPoolCreateInfo(maxSets=count, poolSizeCount=1, pPoolSizes=sizes)
        pool = self._created(
            "vkDestroyDescriptorPool", vk.vkCreateDescriptorPool(self._device, pool_info, None)
        )
        layouts = [self._pipelines[d.kernel][2] for d in program.dispatches]
        allocate = vk.VkDescriptorSetAllocateInfo(
            descriptorPool=pool, descriptorSetCount=count, pSetLayouts=layouts
        )
        self._sets = list(vk.vkAllocateDescriptorSets(self._device, allocate))
        writes = [
            vk.VkWriteDescriptorSet(
                dstSet=self._sets[k],
                dstBinding=j,
                descriptorCount=1,
                descriptorType=storage,
                pBufferInfo=[
                    vk.VkDescriptorBufferInfo(
                        buffer=self._buffers[b], offset=0, range=program.buffers[b].bytes
                    )
                ],
            )
            for k, d in enumerate(program.dispatches)
            for j, b in enumerate(d.buffers)
        ]
        vk.vkUpdateDescriptorSets(self._device, len(writes), writes, 0, None)

    def _barrier(self, cmd: Any, src_stage: int, dst_stage: int, src_access: int, dst_access: int) -> None:
        vk = self._vk
        barrier = vk.VkMemoryBarrier(srcAccessMask=src_access, dstAccessMask=dst_access)
        vk.vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 1, [barrier], 0, None, 0, None)

    def _record(self, timestamps: bool) -> Any:
        """The whole inference in one reusable command buffer (with a timestamp after each dispatch)."""
        vk = self._vk
        program = self._program
        compute = vk.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT
        transfer = vk.VK_PIPELINE_STAGE_TRANSFER_BIT
        shader_rw = vk.VK_ACCESS_SHADER_READ_BIT | vk.VK_ACCESS_SHADER_WRITE_BIT
        bottom = vk.VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT
        cmd = self._begin()
        if timestamps:
            vk.vkCmdResetQueryPool(cmd, self._query_pool, 0, len(program.dispatches) + 1)
        copy_in = vk.VkBufferCopy(srcOffset=0, dstOffset=0, size=self._input_bytes)
        vk.vkCmdCopyBuffer(cmd, self._input_staging, self._buffers[program.input_buffer], 1, [copy_in])
        self._barrier(cmd, transfer, compute, vk.VK_ACCESS_TRANSFER_WRITE_BIT, shader_rw)
        if timestamps:
            vk.vkCmdWriteTimestamp(cmd, bottom, self._query_pool, 0)
        for k, d in enumerate(program.dispatches):
            if k:
                self._barrier(cmd, compute, compute, vk.VK_ACCESS_SHADER_WRITE_BIT, shader_rw)
            pipeline, layout, _ = self._pipelines[d.kernel]
            vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, pipeline)
            vk.vkCmdBindDescriptorSets(
                cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, layout, 0, 1, [self._sets[k]], 0, None
            )
            vk.vkCmdDispatch(cmd, *d.groups)
            if timestamps:
                vk.vkCmdWriteTimestamp(cmd, bottom, self._query_pool, k + 1)
        self._barrier(cmd, compute, transfer, vk.VK_ACCESS_SHADER_WRITE_BIT, vk.VK_ACCESS_TRANSFER_READ_BIT)
        copy_out = vk.VkBufferCopy(srcOffset=0, dstOffset=0, size=self._output_bytes)
        vk.vkCmdCopyBuffer(cmd, self._buffers[program.output_buffer], self._output_staging, 1, [copy_out])
        self._barrier(
            cmd,
            transfer,
            vk.VK_PIPELINE_STAGE_HOST_BIT,
            vk.VK_ACCESS_TRANSFER_WRITE_BIT,
            vk.VK_ACCESS_HOST_READ_BIT,
        )
        vk.vkEndCommandBuffer(cmd)
        return cmd

    # ----------------------------------------------------------------- interface

    @property
    def threads(self) -> int:
        """Kept for interface compatibility with CompiledModel: the device decides its own parallelism."""
        return 1

    @threads.setter
    def threads(self, count: int) -> None:
        checked_threads(count)

    def set_profiling(self, on: bool) -> None:
        """Start (and zero) or stop timing each dispatch on the GPU (Vulkan timestamp queries)."""
        vk = self._vk
        self._check_open()
        with self._lock:
            if on and self._profiled_cmd is None:
                if self._timestamp_bits == 0:
                    raise ArtifactError(
                        f"kernel profiles are not available: {self.device_name} has no timestamps"
                    )
                info = vk.VkQueryPoolCreateInfo(
                    queryType=vk.VK_QUERY_TYPE_TIMESTAMP, queryCount=len(self._program.dispatches) + 1
                )
                self._query_pool = self._created(
                    "vkDestroyQueryPool", vk.vkCreateQueryPool(self._device, info, None)
                )
                self._profiled_cmd = self._record(timestamps=True)
            self._profiling = bool(on)
            self._profile_seconds[:] = 0.0
            self._profile_calls = 0

    def kernel_profile(self) -> list[KernelProfile]:
        """Per dispatch (in order, named by its label): GPU time and calls since profiling was turned on."""
        return [
            KernelProfile(
                d.label,
                float(seconds),
                self._profile_calls,
                d.flops,
                d.dense_flops,
                float(sum(self._program.buffers[b].bytes for b in d.buffers)),
            )
            for d, seconds in zip(self._program.dispatches, self._profile_seconds, strict=True)
        ]

    def _check_open(self) -> None:
        if self._device is None:
            raise ArtifactError(f"'{self.path}' was closed")

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Run the model on ``x``; write into ``out`` (float32, C-contiguous) if given."""
        x = checked_input(x, self.input_shape)
        y = output_array(out, self.output_shape)
        vk = self._vk
        with self._lock:
            self._check_open()
            np.copyto(self._input_view, x, casting="same_kind")
            try:
                self._submit(self._profiled_cmd if self._profiling else self._cmd)
                if self._profiling:
                    self._read_timestamps()
            except (vk.VkError, vk.VkException) as err:
                raise self._vulkan_error(err, "running the model") from None
            np.copyto(y, self._output_view)
        return y

    def _read_timestamps(self) -> None:
        vk = self._vk
        count = len(self._program.dispatches) + 1
        data = vk.ffi.new("uint64_t[]", count)
        flags = vk.VK_QUERY_RESULT_64_BIT | vk.VK_QUERY_RESULT_WAIT_BIT
        vk.vkGetQueryPoolResults(self._device, self._query_pool, 0, count, 8 * count, data, 8, flags)
        ticks = np.frombuffer(vk.ffi.buffer(data), dtype=np.uint64).copy()
        mask = np.uint64(_UINT64_MAX if self._timestamp_bits >= 64 else (1 << self._timestamp_bits) - 1)
        elapsed = (ticks[1:] - ticks[:-1]) & mask  # wraps correctly modulo the valid bits
        self._profile_seconds += elapsed.astype(np.float64) * self._timestamp_period * 1e-9
        self._profile_calls += 1

    def close(self) -> None:
        """Wait for the device and destroy every Vulkan object (idempotent)."""
        vk = self._vk if hasattr(self, "_vk") else None
        with self._lock:
            device, self._device = self._device, None
            if vk is not None and device is not None:
                try:
                    vk.vkDeviceWaitIdle(device)
                except Exception:  # a lost device: destroy anyway
                    pass
                self._input_view = self._output_view = None  # type: ignore[assignment]
                for destroy, handle in reversed(self._destroy):
                    getattr(vk, destroy)(device, handle, None)
                for buffer, memory in reversed(self._allocations):
                    vk.vkDestroyBuffer(device, buffer, None)
                    if memory is not None:
                        vk.vkFreeMemory(device, memory, None)
                vk.vkDestroyDevice(device, None)
            self._destroy, self._allocations = [], []
            if vk is not None and self._instance is not None:
                vk.vkDestroyInstance(self._instance, None)
            self._instance = None

    def __enter__(self) -> VulkanModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (
            f"VulkanModel('{self.path}', device={getattr(self, 'device_name', None)!r}, "
            f"input_shape={self.input_shape}, output_shape={self.output_shape})"
        )

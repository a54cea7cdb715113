/* rt3d_vulkan.h: run rt3d-mlir SPIR-V artifacts (rt3d-compile --target spirv) from C, on the
 * Vulkan C API, without Python. Part of rt3d-mlir; `rt3d-compile --emit-vulkan-runtime DIR`
 * writes this header, the library's sources and the library built for a CPU (librt3d_vulkan.so:
 * links libvulkan.so.1, libjansson.so.4 and libminizip.so.1).
 *
 * The artifact is checked before anything is allocated or dispatched, with the same rules as
 * the Python runtime (docs/spirv_artifact.md): the manifest against the format, every kernel's
 * SPIR-V module for what it reads and writes, every dispatch against its kernel, the device's
 * limits and features. Loading creates every buffer once (weights uploaded, "zero" buffers
 * cleared) and records one command buffer that every call resubmits.
 *
 * Errors: a function that fails returns NULL (load) or non-zero (run) and writes one line,
 * NUL-terminated, into `error` (at most `error_size` bytes; `error` may be NULL).
 * Threads: calls on one model are serialised by the model; models are independent. */
#ifndef RT3D_VULKAN_H
#define RT3D_VULKAN_H
#include <stddef.h>
#include <stdint.h>

#define RT3D_VK_API_VERSION 1u

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt3d_vk_model rt3d_vk_model;

unsigned rt3d_vk_api_version(void); /* RT3D_VK_API_VERSION of the library */

/* Load the artifact at `path` on a Vulkan device. `device`: NULL for the first discrete,
 * integrated or virtual GPU (else the first device, e.g. Mesa's lavapipe on the CPU), a decimal
 * index, or a case-insensitive part of the device's "name (type)". */
rt3d_vk_model *rt3d_vk_load(const char *path, const char *device, char *error, size_t error_size);

int32_t rt3d_vk_input_rank(const rt3d_vk_model *model);
const int64_t *rt3d_vk_input_shape(const rt3d_vk_model *model);
int32_t rt3d_vk_output_rank(const rt3d_vk_model *model);
const int64_t *rt3d_vk_output_shape(const rt3d_vk_model *model);
const char *rt3d_vk_device_name(const rt3d_vk_model *model); /* "name (type)" */
const char *rt3d_vk_precision(const rt3d_vk_model *model);   /* "fp32", "fp16" or "int8" */
int rt3d_vk_robust_buffer_access(const rt3d_vk_model *model); /* 1 where the device enforces it */

/* One inference: `input` holds the dense row-major float32 input of the input shape, `output`
 * receives the float32 output of the output shape. Returns 0 on success. */
int rt3d_vk_run(rt3d_vk_model *model, const float *input, float *output, char *error,
                size_t error_size);

/* Wait for the device and free everything (NULL is allowed). */
void rt3d_vk_free(rt3d_vk_model *model);

#ifdef __cplusplus
}
#endif
#endif /* RT3D_VULKAN_H */

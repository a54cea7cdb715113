/* classify_spirv.c: run an rt3d-mlir SPIR-V artifact on one clip with the C Vulkan runtime, without
 * Python, and print the top class.
 *
 *   rt3d-compile model.pt -o model.spv --target spirv
 *   rt3d-compile --emit-vulkan-runtime rt3d-vulkan --target host      (or aarch64)
 *   cc -O2 -Irt3d-vulkan classify_spirv.c -Lrt3d-vulkan -lrt3d_vulkan -o classify_spirv \
 *      -Wl,-rpath,'$ORIGIN/rt3d-vulkan'
 *   ./classify_spirv [-d DEVICE] [-n RUNS] MODEL.spv [CLIP.f32 [SCORES.f32]]
 *
 * CLIP.f32 holds the model's input as raw float32 (row-major, the artifact's input shape); without
 * it (or with "-") the clip is a fixed pattern. SCORES.f32, if given, receives the whole output as
 * raw float32. DEVICE: an index or part of a Vulkan device's name (default: the first GPU, else
 * the first device). RUNS: run the model that many times (the last run's output is printed).
 * Prints "class <index> score <value>" for the largest output, and the device on stderr.
 * Exit status 0 on success; otherwise one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt3d_vulkan.h"

static size_t elements(const int64_t *shape, int32_t rank) {
  size_t n = 1;
  for (int32_t i = 0; i < rank; ++i) n *= (size_t)shape[i];
  return n;
}

int main(int argc, char **argv) {
  const char *device = NULL;
  long runs = 1;
  int arg = 1;
  for (; arg + 1 < argc && argv[arg][0] == '-' && argv[arg][1]; arg += 2) {
    if (!strcmp(argv[arg], "-d")) device = argv[arg + 1];
    else if (!strcmp(argv[arg], "-n")) runs = strtol(argv[arg + 1], NULL, 10);
    else break;
  }
  if (arg >= argc || runs < 1) {
    fprintf(stderr, "usage: classify_spirv [-d DEVICE] [-n RUNS] MODEL.spv [CLIP.f32 [SCORES.f32]]\n");
    return 2;
  }
  if (rt3d_vk_api_version() != RT3D_VK_API_VERSION) {
    fprintf(stderr, "classify_spirv: the library has API version %u, this program was built for %u\n",
            rt3d_vk_api_version(), RT3D_VK_API_VERSION);
    return 2;
  }
  char error[2048];
  rt3d_vk_model *model = rt3d_vk_load(argv[arg], device, error, sizeof error);
  if (!model) {
    fprintf(stderr, "classify_spirv: error: %s\n", error);
    return 1;
  }
  size_t in_count = elements(rt3d_vk_input_shape(model), rt3d_vk_input_rank(model));
  size_t out_count = elements(rt3d_vk_output_shape(model), rt3d_vk_output_rank(model));
  float *input = malloc(in_count * sizeof(float));
  float *output = malloc(out_count * sizeof(float));
  int status = 1;
  if (!input || !output) {
    fprintf(stderr, "classify_spirv: error: out of memory\n");
    goto done;
  }
  const char *clip = arg + 1 < argc ? argv[arg + 1] : "-";
  if (strcmp(clip, "-")) {
    FILE *f = fopen(clip, "rb");
    if (!f) {
      fprintf(stderr, "classify_spirv: error: cannot open '%s'\n", clip);
      goto done;
    }
    size_t got = fread(input, sizeof(float), in_count, f);
    int extra = fgetc(f);
    fclose(f);
    if (got != in_count || extra != EOF) {
      fprintf(stderr, "classify_spirv: error: '%s' is not %zu float32 values (the artifact's input)\n", clip,
              in_count);
      goto done;
    }
  } else {
    for (size_t i = 0; i < in_count; ++i) input[i] = (float)((int)(i % 17) - 8) / 8.0f;
  }
  for (long r = 0; r < runs; ++r)
    if (rt3d_vk_run(model, input, output, error, sizeof error)) {
      fprintf(stderr, "classify_spirv: error: %s\n", error);
      goto done;
    }
  if (arg + 2 < argc) {
    FILE *f = fopen(argv[arg + 2], "wb");
    if (!f || fwrite(output, sizeof(float), out_count, f) != out_count || fclose(f)) {
      fprintf(stderr, "classify_spirv: error: cannot write '%s'\n", argv[arg + 2]);
      goto done;
    }
  }
  size_t best = 0;
  for (size_t i = 1; i < out_count; ++i)
    if (output[i] > output[best]) best = i;
  fprintf(stderr, "device %s, precision %s\n", rt3d_vk_device_name(model), rt3d_vk_precision(model));
  printf("class %zu score %g\n", best, output[best]);
  status = 0;
done:
  free(input);
  free(output);
  rt3d_vk_free(model);
  return status;
}

/* classify.c: run an rt3d-mlir CPU artifact on one clip, without Python, and print the top class.
 *
 *   rt3d-compile model.pt -o model.so        (or --target aarch64)
 *   rt3d-compile --emit-header rt3d.h
 *   cc -O2 -I. classify.c model.so -o classify -Wl,-rpath,'$ORIGIN'
 *   ./classify [CLIP.f32 [THREADS]]
 *
 * CLIP.f32 holds the model's input as raw float32 (row-major, the artifact's input shape,
 * e.g. 1x3x16x112x112 for C3D: the clip already normalized as in training); without it the
 * clip is a fixed pattern, so the output is reproducible. THREADS: 0 (the default) lets the
 * artifact choose (RT3D_NUM_THREADS, else the CPUs). Prints "class <index> score <value>"
 * for the largest output (the output's last dimension holds the class scores).
 * Exit status 0 on success; otherwise one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rt3d.h"

static int64_t elements(const int64_t *shape, int32_t rank) {
  int64_t n = 1;
  for (int32_t i = 0; i < rank; ++i) n *= shape[i];
  return n;
}

int main(int argc, char **argv) {
  if (rt3d_abi_version() != RT3D_ABI_VERSION) {
    fprintf(stderr, "classify: the artifact has ABI version %u, this program was built for %u\n",
            (unsigned)rt3d_abi_version(), (unsigned)RT3D_ABI_VERSION);
    return 2;
  }
  int64_t in_count = elements(rt3d_input_shape(), rt3d_input_rank());
  int64_t out_count = elements(rt3d_output_shape(), rt3d_output_rank());
  float *input = malloc((size_t)in_count * sizeof(float));
  float *output = malloc((size_t)out_count * sizeof(float));
  if (!input || !output) {
    fprintf(stderr, "classify: out of memory\n");
    return 1;
  }
  if (argc > 1) {
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
      fprintf(stderr, "classify: cannot open '%s'\n", argv[1]);
      return 1;
    }
    size_t got = fread(input, sizeof(float), (size_t)in_count, f);
    int extra = fgetc(f);
    fclose(f);
    if (got != (size_t)in_count || extra != EOF) {
      fprintf(stderr, "classify: '%s' is not %lld float32 values (the artifact's input)\n", argv[1],
              (long long)in_count);
      return 1;
    }
  } else {
    for (int64_t i = 0; i < in_count; ++i) input[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
  }
  if (argc > 2) rt3d_set_num_threads((int32_t)atoi(argv[2]));
  int32_t status = rt3d_forward(input, output);
  if (status != 0) {
    fprintf(stderr, "classify: rt3d_forward failed (status %d)\n", (int)status);
    return 1;
  }
  const int64_t *out_shape = rt3d_output_shape();
  int64_t classes = out_shape[rt3d_output_rank() - 1];
  int64_t best = 0;
  for (int64_t i = 1; i < classes; ++i) {
    if (output[i] > output[best]) best = i;
  }
  printf("class %lld score %.6g\n", (long long)best, (double)output[best]);
  free(input);
  free(output);
  return 0;
}

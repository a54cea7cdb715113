/* rt3d-mlir run harness: runs a compiled artifact in a process of its own
 * architecture (used for AArch64 artifacts under qemu-aarch64).
 *
 *   harness ARTIFACT.so info
 *       prints "abi <version>\ntarget <name>\ninput <d0> <d1> ...\noutput <d0> ...\n"
 *   harness ARTIFACT.so run INPUT.bin OUTPUT.bin THREADS REPEAT
 *       reads the float32 input (row-major, the artifact's input shape), calls
 *       rt3d_forward REPEAT times on THREADS threads (0: the artifact's
 *       default), writes the float32 output and prints "seconds <median>".
 *   harness ARTIFACT.so run INPUT.bin OUTPUT.bin THREADS REPEAT profile
 *       the same with the artifact's kernel profile on, then one line per
 *       kernel call site: "kernel <name> <calls> <flops> <dense flops> <bytes>".
 *       Profiling reads the clock before and after each kernel; under qemu
 *       with the instruction-counting plugin those reads delimit the kernels.
 *
 * Exit status 0 on success; otherwise one line on stderr.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint32_t (*abi_fn)(void);
typedef const char *(*target_fn)(void);
typedef int32_t (*rank_fn)(void);
typedef const int64_t *(*shape_fn)(void);
typedef int32_t (*forward_fn)(const float *, float *);
typedef int32_t (*threads_fn)(int32_t);
typedef int32_t (*entries_fn)(void);
typedef const char *(*name_fn)(int32_t);
typedef int64_t (*calls_fn)(int32_t);
typedef double (*value_fn)(int32_t);

static void *need(void *lib, const char *name) {
  void *symbol = dlsym(lib, name);
  if (!symbol) {
    fprintf(stderr, "harness: the artifact has no %s: not an rt3d artifact\n", name);
    exit(2);
  }
  return symbol;
}

static int64_t elements(const int64_t *shape, int32_t rank) {
  int64_t n = 1;
  for (int32_t i = 0; i < rank; ++i) n *= shape[i];
  return n;
}

static void print_shape(const char *label, const int64_t *shape, int32_t rank) {
  printf("%s", label);
  for (int32_t i = 0; i < rank; ++i) printf(" %lld", (long long)shape[i]);
  printf("\n");
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: harness ARTIFACT.so info | run INPUT OUTPUT THREADS REPEAT\n");
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "harness: cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  abi_fn abi = (abi_fn)need(lib, "rt3d_abi_version");
  target_fn target = (target_fn)need(lib, "rt3d_target");
  rank_fn in_rank = (rank_fn)need(lib, "rt3d_input_rank");
  shape_fn in_shape = (shape_fn)need(lib, "rt3d_input_shape");
  rank_fn out_rank = (rank_fn)need(lib, "rt3d_output_rank");
  shape_fn out_shape = (shape_fn)need(lib, "rt3d_output_shape");
  if (strcmp(argv[2], "info") == 0) {
    printf("abi %u\ntarget %s\n", abi(), target());
    print_shape("input", in_shape(), in_rank());
    print_shape("output", out_shape(), out_rank());
    return 0;
  }
  int profile = argc == 8 && strcmp(argv[7], "profile") == 0;
  if (strcmp(argv[2], "run") != 0 || (argc != 7 && !profile)) {
    fprintf(stderr, "usage: harness ARTIFACT.so run INPUT OUTPUT THREADS REPEAT [profile]\n");
    return 2;
  }
  forward_fn forward = (forward_fn)need(lib, "rt3d_forward");
  threads_fn set_threads = (threads_fn)need(lib, "rt3d_set_num_threads");
  int64_t n_in = elements(in_shape(), in_rank());
  int64_t n_out = elements(out_shape(), out_rank());
  int threads = atoi(argv[5]);
  int repeat = atoi(argv[6]) > 0 ? atoi(argv[6]) : 1;
  float *input = malloc(sizeof(float) * (size_t)n_in);
  float *output = malloc(sizeof(float) * (size_t)n_out);
  double *times = malloc(sizeof(double) * (size_t)repeat);
  if (!input || !output || !times) {
    fprintf(stderr, "harness: out of memory\n");
    return 2;
  }
  FILE *f = fopen(argv[3], "rb");
  if (!f || fread(input, sizeof(float), (size_t)n_in, f) != (size_t)n_in) {
    fprintf(stderr, "harness: cannot read %lld floats from %s\n", (long long)n_in, argv[3]);
    return 2;
  }
  fclose(f);
  if (threads > 0) set_threads(threads);
  if (profile) ((int32_t(*)(int32_t))need(lib, "rt3d_set_profiling"))(1);
  for (int r = 0; r < repeat; ++r) {
    double start = now();
    int32_t status = forward(input, output);
    times[r] = now() - start;
    if (status != 0) {
      fprintf(stderr, "harness: rt3d_forward failed with status %d\n", status);
      return 3;
    }
  }
  f = fopen(argv[4], "wb");
  if (!f || fwrite(output, sizeof(float), (size_t)n_out, f) != (size_t)n_out) {
    fprintf(stderr, "harness: cannot write %s\n", argv[4]);
    return 2;
  }
  fclose(f);
  qsort(times, (size_t)repeat, sizeof(double), compare);
  printf("seconds %.9f\n", times[repeat / 2]);
  if (profile) {
    int32_t entries = ((entries_fn)need(lib, "rt3d_profile_entries"))();
    name_fn name = (name_fn)need(lib, "rt3d_profile_name");
    calls_fn calls = (calls_fn)need(lib, "rt3d_profile_calls");
    value_fn flops = (value_fn)need(lib, "rt3d_profile_flops");
    value_fn dense = (value_fn)need(lib, "rt3d_profile_dense_flops");
    value_fn bytes = (value_fn)need(lib, "rt3d_profile_bytes");
    for (int32_t i = 0; i < entries; ++i)
      printf("kernel %s %lld %.17g %.17g %.17g\n", name(i), (long long)calls(i), flops(i), dense(i), bytes(i));
  }
  return 0;
}

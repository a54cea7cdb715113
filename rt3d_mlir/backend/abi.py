"""The C ABI of a compiled artifact, and the glue sources that implement it.

Every artifact (a shared object) exports, with C linkage, the functions
that :func:`header_text` declares (``rt3d-compile --emit-header rt3d.h``
writes that header for C programs; the glue below includes it, so the
compiler checks each definition against it):

    the ABI version, the target, the input and output ranks and shapes,
    rt3d_forward, the thread count, per-kernel profiling, rt3d_release_memory.

``rt3d_forward`` reads a dense row-major float32 input of the input shape
and writes the dense float32 output; it returns 0 on success (2: the
kernels use AMX tiles and Linux refused the process their state,
requested when the artifact is loaded). It is
re-entrant: temporaries are allocated per call. Weights live in the
artifact's read-only data (linked in from a binary blob with ``.incbin``).
Nothing else is exported.

Threads. Each generated kernel splits its work into independent tasks (see
``rt3d_mlir.passes.kernel_calls``). The glue defines each kernel's
*dispatch* function, which runs the kernel's tasks on
``rt3d_num_threads()`` POSIX threads (the calling thread included): the
threads take runs of tasks (about 16 per thread) from a shared atomic
counter, so blocks with more kept weights do not stall the others. The helper threads live
across dispatches (started on the first parallel dispatch; starting threads
per dispatch cost 30-40 us each): after a job a helper watches for the next
one for 0.3 ms, then parks on a condition variable, and the dispatching
thread watches for its helpers to finish before it sleeps (waking a parked
thread took long enough here that a 0.7 ms kernel ran no faster on 2
threads than on 1); a second caller running the model at the same time gets
helpers of its own per dispatch.
The default count is ``RT3D_NUM_THREADS`` from the environment, else the
number of online CPUs. The same C builds for every target.

Memory. The model's temporaries (``memref.alloc``, lowered with
``finalize-memref-to-llvm{use-generic-functions}``) come from the glue's
``_mlir_memref_to_llvm_alloc``/``_free``, which keep freed blocks for
reuse (best fit within 2x of the request): after the first inference, no
call maps fresh pages, whose first-touch faults otherwise cost as much as a
large convolution. Blocks of 1 MB or more are 2 MB aligned and advised as
transparent huge pages: a convolution reads many channel planes at once,
and with 4 KB pages their translations overflow the TLB. ``rt3d_release_memory`` returns the cached blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from rt3d_mlir.contracts.shared_object import (
    ABI_VERSION,
    EXPORTED_SYMBOLS,
    FORWARD_IMPL_SYMBOL,
    INFO_FORMAT,
    INFO_SECTION,
    INFO_SYMBOL,
    MAX_THREADS,
)


@dataclass(frozen=True)
class WeightSymbol:
    name: str
    offset: int  # bytes into the blob
    size: int  # bytes


@dataclass(frozen=True)
class Dispatch:
    """A kernel call site: ``name(args...)`` runs ``kernel(args..., begin, end)`` over ``tasks``."""

    name: str
    kernel: str
    arguments: int  # pointer arguments (the task range comes after them)
    tasks: int
    flops: int = 0  # per call, with kept weights only
    dense_flops: int = 0  # per call, had the layer been dense
    bytes: int = 0  # per call: the sizes of the buffers the kernel reads and writes


_THREAD_RUNTIME = """\
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Temporaries: a small cache of freed blocks, reused best-fit. */
#define RT3D_CACHED_BLOCKS 128
#define RT3D_HEADER 64
#define RT3D_HUGE_PAGE (2u << 20)
#define RT3D_HUGE_THRESHOLD (1u << 20)
static pthread_mutex_t g_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_cached[RT3D_CACHED_BLOCKS];
static int g_cached_count = 0;

static uint64_t rt3d_block_size(char *block) { return *(uint64_t *)block; }

void *_mlir_memref_to_llvm_alloc(uint64_t size) {
  char *best = NULL;
  int best_index = -1;
  pthread_mutex_lock(&g_cache_lock);
  for (int i = 0; i < g_cached_count; ++i) {
    uint64_t have = rt3d_block_size(g_cached[i]);
    if (have >= size && have / 2 <= size && (!best || have < rt3d_block_size(best))) {
      best = g_cached[i];
      best_index = i;
    }
  }
  if (best) g_cached[best_index] = g_cached[--g_cached_count];
  pthread_mutex_unlock(&g_cache_lock);
  if (!best) {
    if (size >= RT3D_HUGE_THRESHOLD) {
      /* Large activations on 2 MB pages: the kernels touch many channel
         planes at once, and 4 KB pages overflow the TLB. */
      uint64_t rounded = (size + RT3D_HEADER + RT3D_HUGE_PAGE - 1) / RT3D_HUGE_PAGE * RT3D_HUGE_PAGE;
      void *aligned = NULL;
      if (posix_memalign(&aligned, RT3D_HUGE_PAGE, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
      madvise(aligned, rounded, MADV_HUGEPAGE);
#endif
      best = (char *)aligned;
    } else {
      best = (char *)malloc(size + RT3D_HEADER);
      if (!best) return NULL;
    }
    *(uint64_t *)best = size;
  }
  return best + RT3D_HEADER;
}

void _mlir_memref_to_llvm_free(void *pointer) {
  if (!pointer) return;
  char *block = (char *)pointer - RT3D_HEADER;
  pthread_mutex_lock(&g_cache_lock);
  if (g_cached_count < RT3D_CACHED_BLOCKS) {
    g_cached[g_cached_count++] = block;
    block = NULL;
  }
  pthread_mutex_unlock(&g_cache_lock);
  free(block);
}

int32_t rt3d_release_memory(void) {
  pthread_mutex_lock(&g_cache_lock);
  for (int i = 0; i < g_cached_count; ++i) free(g_cached[i]);
  g_cached_count = 0;
  pthread_mutex_unlock(&g_cache_lock);
  return 0;
}

typedef void (*rt3d_task_fn)(void *const *args, int64_t begin, int64_t end);

static int32_t g_threads = 0;

int32_t rt3d_set_num_threads(int32_t threads) {
  if (threads < 0) return 1;
  __atomic_store_n(&g_threads, threads, __ATOMIC_RELAXED);
  return 0;
}

int32_t rt3d_num_threads(void) {
  int32_t threads = __atomic_load_n(&g_threads, __ATOMIC_RELAXED);
  if (threads > 0) return threads;
  const char *env = getenv("RT3D_NUM_THREADS");
  if (env && atoi(env) > 0) return atoi(env);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 ? (int32_t)cpus : 1;
}

struct rt3d_job {
  rt3d_task_fn fn;
  void *const *args;
  int64_t tasks;
  int64_t grab; /* tasks taken at once */
  int64_t next;
};

static void *rt3d_worker(void *opaque) {
  struct rt3d_job *job = (struct rt3d_job *)opaque;
  for (;;) {
    int64_t task = __atomic_fetch_add(&job->next, job->grab, __ATOMIC_RELAXED);
    if (task >= job->tasks) break;
    int64_t end = task + job->grab < job->tasks ? task + job->grab : job->tasks;
    job->fn(job->args, task, end);
  }
  return NULL;
}


/* Helper threads that live across dispatches: started on the first parallel dispatch that needs
   them, parked on a condition variable in between (starting and joining a thread per dispatch
   cost 30-40 us here, several milliseconds per inference for a model of ~200 kernel calls). One
   dispatch at a time uses them (g_pool_lock); a dispatch from another thread meanwhile (two
   callers of the model at once) starts helpers of its own. A forked child starts with no
   helpers; unloading the library stops and joins them. */
static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_pool_state = PTHREAD_MUTEX_INITIALIZER; /* guards what follows */
static pthread_cond_t g_pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t g_pool_done = PTHREAD_COND_INITIALIZER;
static pthread_t g_pool_threads[RT3D_MAX_THREADS];
static unsigned long g_pool_seen[RT3D_MAX_THREADS]; /* the last job each helper has looked at */
static int g_pool_size = 0;
static int g_pool_wanted = 0; /* helpers taking part in the current job */
static unsigned long g_pool_busy = 0; /* of those, still working (read unlocked while spinning) */
static int g_pool_stop = 0;
static unsigned long g_pool_generation = 0; /* read unlocked by spinning helpers */
static struct rt3d_job *g_pool_job = NULL;
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

/* How long a helper that finished a job watches for the next one, and the dispatching thread for
   its helpers to finish, before sleeping on a condition variable. Waking a sleeping thread takes a
   futex call and, on a VM, an interrupt to an idle virtual CPU: a kernel of 0.7 ms in 4 tasks ran
   no faster on 2 threads than on 1, the helper arriving after the dispatcher had taken them all. A
   model dispatches its kernels back to back, so a helper that watches catches the next one. */
#define RT3D_SPIN_NS 300000

static inline void rt3d_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static int64_t rt3d_now_ns(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Spin, at most RT3D_SPIN_NS, while *word equals value. */
static void rt3d_spin_while(const unsigned long *word, unsigned long value) {
  int64_t deadline = rt3d_now_ns() + RT3D_SPIN_NS;
  for (unsigned i = 1; __atomic_load_n(word, __ATOMIC_ACQUIRE) == value; ++i) {
    rt3d_relax();
    if (i % 64 == 0 && rt3d_now_ns() > deadline) return;
  }
}

/* Spin, at most RT3D_SPIN_NS, until *word is 0. */
static void rt3d_spin_until_zero(const unsigned long *word) {
  int64_t deadline = rt3d_now_ns() + RT3D_SPIN_NS;
  for (unsigned i = 1; __atomic_load_n(word, __ATOMIC_ACQUIRE) != 0; ++i) {
    rt3d_relax();
    if (i % 64 == 0 && rt3d_now_ns() > deadline) return;
  }
}

static void *rt3d_pool_main(void *opaque) {
  int index = (int)(intptr_t)opaque;
  pthread_mutex_lock(&g_pool_state);
  for (;;) {
    if (!g_pool_stop && g_pool_generation == g_pool_seen[index]) {
      unsigned long seen = g_pool_seen[index];
      pthread_mutex_unlock(&g_pool_state);
      rt3d_spin_while(&g_pool_generation, seen);
      pthread_mutex_lock(&g_pool_state);
    }
    while (!g_pool_stop && g_pool_generation == g_pool_seen[index])
      pthread_cond_wait(&g_pool_wake, &g_pool_state);
    if (g_pool_stop) break;
    g_pool_seen[index] = g_pool_generation;
    if (index >= g_pool_wanted) continue;
    struct rt3d_job *job = g_pool_job;
    pthread_mutex_unlock(&g_pool_state);
    rt3d_worker(job);
    pthread_mutex_lock(&g_pool_state);
    if (__atomic_sub_fetch(&g_pool_busy, 1, __ATOMIC_RELEASE) == 0) pthread_cond_signal(&g_pool_done);
  }
  pthread_mutex_unlock(&g_pool_state);
  return NULL;
}

static void rt3d_pool_after_fork(void) {
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
  g_pool_lock = fresh;
  g_pool_state = fresh;
  g_pool_wake = fresh_cond;
  g_pool_done = fresh_cond;
  g_pool_size = 0;
  g_pool_busy = 0;
  g_pool_wanted = 0;
}

static void rt3d_pool_register(void) { pthread_atfork(NULL, NULL, rt3d_pool_after_fork); }

__attribute__((destructor)) static void rt3d_pool_shutdown(void) {
  pthread_mutex_lock(&g_pool_state);
  g_pool_stop = 1;
  int size = g_pool_size;
  pthread_cond_broadcast(&g_pool_wake);
  pthread_mutex_unlock(&g_pool_state);
  for (int i = 0; i < size; ++i) pthread_join(g_pool_threads[i], NULL);
}

/* Helpers started per dispatch: the pool is busy with another caller's dispatch. */
static void rt3d_run_with_new_threads(struct rt3d_job *job, int64_t threads) {
  pthread_t helpers[RT3D_MAX_THREADS];
  int started = 0;
  for (int64_t i = 1; i < threads; ++i) {
    if (pthread_create(&helpers[started], NULL, rt3d_worker, job) != 0) break;
    ++started;
  }
  rt3d_worker(job);
  for (int i = 0; i < started; ++i) pthread_join(helpers[i], NULL);
}

static void rt3d_parallel_for(rt3d_task_fn fn, void *const *args, int64_t tasks) {
  int64_t threads = rt3d_num_threads();
  if (threads > tasks) threads = tasks;
  if (threads > RT3D_MAX_THREADS) threads = RT3D_MAX_THREADS;
  if (threads <= 1) {
    fn(args, 0, tasks);
    return;
  }
  /* a run of tasks per grab, about 16 grabs per thread: the shared counter's cache line moves
     between cores at every grab, which cost as much as a small task (neighbouring tasks also
     share their inputs: planes of one channel) */
  int64_t grab = tasks / (threads * 16);
  struct rt3d_job job = {fn, args, tasks, grab > 0 ? grab : 1, 0};
  if (pthread_mutex_trylock(&g_pool_lock) != 0) {
    rt3d_run_with_new_threads(&job, threads);
    return;
  }
  pthread_once(&g_pool_once, rt3d_pool_register);
  int helpers = (int)threads - 1;
  pthread_mutex_lock(&g_pool_state);
  while (g_pool_size < helpers) {
    g_pool_seen[g_pool_size] = g_pool_generation; /* a new helper waits for the next job */
    if (pthread_create(&g_pool_threads[g_pool_size], NULL, rt3d_pool_main,
                       (void *)(intptr_t)g_pool_size) != 0)
      break;
    ++g_pool_size;
  }
  if (helpers > g_pool_size) helpers = g_pool_size;
  g_pool_job = &job;
  g_pool_wanted = helpers;
  g_pool_busy = helpers;
  __atomic_store_n(&g_pool_generation, g_pool_generation + 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&g_pool_wake);
  pthread_mutex_unlock(&g_pool_state);
  rt3d_worker(&job);
  rt3d_spin_until_zero(&g_pool_busy);
  pthread_mutex_lock(&g_pool_state);
  while (g_pool_busy > 0) pthread_cond_wait(&g_pool_done, &g_pool_state);
  pthread_mutex_unlock(&g_pool_state);
  pthread_mutex_unlock(&g_pool_lock);
}
"""


def _profile_source(dispatches: Sequence[Dispatch]) -> str:
    count = len(dispatches)
    size = max(count, 1)
    names = ", ".join(f'"{d.kernel}"' for d in dispatches) or '""'
    flops = ", ".join(f"{float(d.flops)!r}" for d in dispatches) or "0.0"
    dense = ", ".join(f"{float(d.dense_flops)!r}" for d in dispatches) or "0.0"
    moved = ", ".join(f"{float(d.bytes)!r}" for d in dispatches) or "0.0"
    return f"""
static int32_t g_profiling = 0;
static const char *const kProfileNames[{size}] = {{{names}}};
static const double kProfileFlops[{size}] = {{{flops}}};
static const double kProfileDenseFlops[{size}] = {{{dense}}};
static const double kProfileBytes[{size}] = {{{moved}}};
static double g_profile_seconds[{size}];
static int64_t g_profile_calls[{size}];

static double rt3d_now(void) {{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}}

int32_t rt3d_set_profiling(int32_t on) {{
  g_profiling = on != 0;
  for (int i = 0; i < {size}; ++i) {{ g_profile_seconds[i] = 0.0; g_profile_calls[i] = 0; }}
  return 0;
}}
int32_t rt3d_profile_entries(void) {{ return {count}; }}
const char *rt3d_profile_name(int32_t i) {{ return (i >= 0 && i < {count}) ? kProfileNames[i] : ""; }}
double rt3d_profile_seconds(int32_t i) {{ return (i >= 0 && i < {count}) ? g_profile_seconds[i] : 0.0; }}
int64_t rt3d_profile_calls(int32_t i) {{ return (i >= 0 && i < {count}) ? g_profile_calls[i] : 0; }}
double rt3d_profile_flops(int32_t i) {{ return (i >= 0 && i < {count}) ? kProfileFlops[i] : 0.0; }}
double rt3d_profile_dense_flops(int32_t i) {{ return (i >= 0 && i < {count}) ? kProfileDenseFlops[i] : 0.0; }}
double rt3d_profile_bytes(int32_t i) {{ return (i >= 0 && i < {count}) ? kProfileBytes[i] : 0.0; }}
"""


def _dispatch_source(index: int, dispatch: Dispatch) -> str:
    params = ", ".join(f"void *a{i}" for i in range(dispatch.arguments))
    pointer_params = ", ".join(["void *"] * dispatch.arguments)
    unpacked = ", ".join(f"args[{i}]" for i in range(dispatch.arguments))
    packed = ", ".join(f"a{i}" for i in range(dispatch.arguments))
    return f"""
void {dispatch.kernel}({pointer_params}, int64_t, int64_t);
static void {dispatch.name}_tasks(void *const *args, int64_t begin, int64_t end) {{
  {dispatch.kernel}({unpacked}, begin, end);
}}
void {dispatch.name}({params}) {{
  void *const args[{dispatch.arguments}] = {{{packed}}};
  double start = g_profiling ? rt3d_now() : 0.0;
  rt3d_parallel_for({dispatch.name}_tasks, args, {dispatch.tasks});
  if (g_profiling) {{
    g_profile_seconds[{index}] += rt3d_now() - start;
    g_profile_calls[{index}] += 1;
  }}
}}
"""


def _c_string(text: str) -> str:
    """A C string literal of ASCII ``text``."""
    return '"' + text.encode("ascii").decode().replace("\\", "\\\\").replace('"', '\\"') + '"'


def info_json(target: str, triple: str, cpu: str, features: Sequence[str], precision: str = "fp32") -> str:
    """The artifact's info record (``rt3d_mlir.contracts.shared_object``)."""
    return json.dumps(
        {
            "format": INFO_FORMAT,
            "abi": ABI_VERSION,
            "target": target,
            "triple": triple,
            "cpu": cpu,
            "features": sorted(set(features)),
            "precision": precision,
        },
        separators=(",", ":"),
    )


def _shape_literal(shape: Sequence[int]) -> str:
    return "{" + ", ".join(f"{int(d)}" for d in shape) + "}"


# f32 -> bf16, to nearest even (a NaN stays a quiet NaN). The kernels round with integer vector
# operations where the CPU cannot (arith-expand); LLVM's instruction selection still calls this for
# the few bf16 constants it builds from f32 ones on such a CPU (AVX2: a max pool's -inf padding),
# and GCC 12's libgcc does not define it.
_BF16_ROUNDING = """\
#include <string.h>
__attribute__((visibility("hidden"))) __bf16 __truncsfbf2(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  uint16_t rounded = (bits & 0x7fffffffu) > 0x7f800000u
                         ? (uint16_t)((bits >> 16) | 0x40u)
                         : (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
  __bf16 result;
  memcpy(&result, &rounded, sizeof result);
  return result;
}
"""


def wrapper_source(
    target: str,
    input_shape: Sequence[int],
    output_shape: Sequence[int],
    dispatches: Sequence[Dispatch] = (),
    info: str = "{}",
    amx: bool = False,
    bf16_rounding: bool = False,
) -> str:
    """C source of the exported entry points, the thread runtime, the kernel dispatches and the
    info section (``info``: the JSON of :func:`info_json`); ``amx``: the kernels use AMX tiles;
    ``bf16_rounding``: the kernels hold bf16 on a CPU that cannot round to it (:data:`_BF16_ROUNDING`)."""
    dispatch_code = _profile_source(dispatches) + "".join(
        _dispatch_source(i, d) for i, d in enumerate(dispatches)
    )
    # Linux gives a process the AMX tile state only on request (ARCH_REQ_XCOMP_PERM for
    # XFEATURE_XTILEDATA); without it the first tile instruction faults
    amx_code = (
        "#include <sys/syscall.h>\n"
        "static int rt3d_amx_refused = 1;\n"
        "__attribute__((constructor)) static void rt3d_request_amx(void) {\n"
        "  rt3d_amx_refused = syscall(SYS_arch_prctl, 0x1023, 18) != 0;\n}\n"
        if amx else ""
    )
    amx_check = "  if (rt3d_amx_refused) return 2;\n" if amx else ""
    return f"""\
/* Generated by rt3d-mlir: the artifact's C ABI (version {ABI_VERSION}). */
{header_text()}
#define RT3D_MAX_THREADS {MAX_THREADS}

__attribute__((section("{INFO_SECTION}"), used, visibility("hidden")))
const char {INFO_SYMBOL}[] = {_c_string(info)};
{_THREAD_RUNTIME}{amx_code}{_BF16_ROUNDING if bf16_rounding else ""}{dispatch_code}
void {FORWARD_IMPL_SYMBOL}(const float *input, float *output);

static const int64_t kInputShape[{len(input_shape)}] = {_shape_literal(input_shape)};
static const int64_t kOutputShape[{len(output_shape)}] = {_shape_literal(output_shape)};

uint32_t rt3d_abi_version(void) {{ return RT3D_ABI_VERSION; }}
const char *rt3d_target(void) {{ return "{target}"; }}
int32_t rt3d_input_rank(void) {{ return {len(input_shape)}; }}
const int64_t *rt3d_input_shape(void) {{ return kInputShape; }}
int32_t rt3d_output_rank(void) {{ return {len(output_shape)}; }}
const int64_t *rt3d_output_shape(void) {{ return kOutputShape; }}

int32_t rt3d_forward(const float *input, float *output) {{
  if (!input || !output) return 1;
{amx_check}  {FORWARD_IMPL_SYMBOL}(input, output);
  return 0;
}}
"""


# The C declarations of the ABI: (return type, name, parameters, comment), in EXPORTED_SYMBOLS order.
_DECLARATIONS = (
    ("uint32_t", "rt3d_abi_version", "void", "RT3D_ABI_VERSION"),
    ("const char *", "rt3d_target", "void", "\"host\" or \"aarch64\""),
    ("int32_t", "rt3d_input_rank", "void", ""),
    ("const int64_t *", "rt3d_input_shape", "void", "rt3d_input_rank() dims"),
    ("int32_t", "rt3d_output_rank", "void", ""),
    ("const int64_t *", "rt3d_output_shape", "void", "rt3d_output_rank() dims"),
    ("int32_t", "rt3d_forward", "const float *input, float *output",
     "dense row-major float32; 0: done, 1: a null pointer, 2: AMX refused by Linux"),
    ("int32_t", "rt3d_set_num_threads", "int32_t threads", "0: RT3D_NUM_THREADS, else the CPUs"),
    ("int32_t", "rt3d_num_threads", "void", ""),
    ("int32_t", "rt3d_set_profiling", "int32_t on", "time every kernel call"),
    ("int32_t", "rt3d_profile_entries", "void", "one per kernel call site"),
    ("const char *", "rt3d_profile_name", "int32_t i", ""),
    ("double", "rt3d_profile_seconds", "int32_t i", "summed since profiling began"),
    ("int64_t", "rt3d_profile_calls", "int32_t i", ""),
    ("double", "rt3d_profile_flops", "int32_t i", "per call: kept weights"),
    ("double", "rt3d_profile_dense_flops", "int32_t i", "per call, if dense"),
    ("double", "rt3d_profile_bytes", "int32_t i", "per call: the kernel's buffers, once"),
    ("int32_t", "rt3d_release_memory", "void", "free cached temporaries"),
)


def header_text() -> str:
    """``rt3d.h``: the C declarations of the artifact ABI (version ``ABI_VERSION``), for programs that
    link an artifact or ``dlopen`` it, and included by every artifact's own glue."""
    lines = [
        f"/* rt3d.h: the C ABI of rt3d-mlir CPU artifacts (host, AArch64), version {ABI_VERSION}.",
        " * Generated by rt3d-mlir (rt3d-compile --emit-header). An artifact is a shared object:",
        " * link it (cc app.c model.so) or dlopen it and look these names up. rt3d_forward is",
        " * re-entrant; the weights are in the artifact; threads are the artifact's own. */",
        "#ifndef RT3D_H",
        "#define RT3D_H",
        "#include <stdint.h>",
        "",
        f"#define RT3D_ABI_VERSION {ABI_VERSION}u",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
    ]
    for result, name, params, comment in _DECLARATIONS:
        space = "" if result.endswith("*") else " "
        note = f"  /* {comment} */" if comment else ""
        lines.append(f"{result}{space}{name}({params});{note}")
    lines += ["", "#ifdef __cplusplus", "}", "#endif", "#endif /* RT3D_H */", ""]
    return "\n".join(lines)


BLOB_SYMBOL = "__rt3d_weights_blob"


def weights_assembly(blob_path: str, weights: Sequence[WeightSymbol]) -> str:
    """Assembly defining each weight symbol as a slice of the blob file.

    The blob is included once (``.incbin`` re-reads its file for every
    directive: one per weight made the assembler hold the blob dozens of
    times, 8.8 GB and 14 s for a pruned C3D); each weight symbol is then
    an offset into it (the blob keeps them 64-byte aligned).
    """
    escaped = blob_path.replace("\\", "\\\\").replace('"', '\\"')
    lines = ["/* Generated by rt3d-mlir: model weights, read-only. */"]
    lines.append('\t.section .rodata.rt3d_weights,"a"')
    if weights:
        lines += ["\t.p2align 6", f"{BLOB_SYMBOL}:", f'\t.incbin "{escaped}"']
    for weight in weights:
        lines += [
            f"\t.globl {weight.name}",
            f"\t.hidden {weight.name}",
            f"\t.type {weight.name}, %object",
            f"\t.set {weight.name}, {BLOB_SYMBOL} + {weight.offset}",
            f"\t.size {weight.name}, {weight.size}",
        ]
    lines.append('\t.section .note.GNU-stack,"",%progbits')
    return "\n".join(lines) + "\n"


def version_script() -> str:
    """Linker version script: export the ABI, hide everything else."""
    exported = " ".join(f"{name};" for name in EXPORTED_SYMBOLS)
    return f"{{ global: {exported} local: *; }};\n"

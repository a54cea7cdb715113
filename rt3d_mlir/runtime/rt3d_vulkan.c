/* rt3d_vulkan.c: the C runtime for rt3d-mlir SPIR-V artifacts (API in rt3d_vulkan.h).
 *
 * The artifact format is docs/spirv_artifact.md; its constants come from rt3d_spirv_format.h,
 * which rt3d-mlir generates from its Python definitions (rt3d-compile --emit-vulkan-runtime).
 * The checks mirror the Python runtime (rt3d_mlir/contracts/spirv_artifact.py for the manifest,
 * rt3d_mlir/runtime/spirv_artifact.py for the modules, rt3d_mlir/runtime/vulkan.py for the
 * device) rule for rule and in the same order, with the same messages; a test runs every hostile
 * artifact of the Python runtime's tests through both.
 *
 * Libraries: minizip (zlib's ZIP reader) for the container, jansson for the manifest, the
 * Vulkan loader. Everything read from the file is data until checked: no member is inflated past
 * the size the format allows, and nothing is allocated on a device before every check passed. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <minizip/unzip.h>
#include <vulkan/vulkan.h>

#include "rt3d_spirv_format.h"
#include "rt3d_vulkan.h"

#define MESSAGE_BYTES 1024
#define MAX_BINDINGS 1024

/* ------------------------------------------------------------------------ messages */

typedef struct {
  char *text;
  size_t length, capacity;
} text_t;

static void text_add(text_t *t, const char *format, ...) {
  va_list args;
  for (;;) {
    size_t room = t->capacity - t->length;
    va_start(args, format);
    int n = vsnprintf(t->text ? t->text + t->length : NULL, t->text ? room : 0, format, args);
    va_end(args);
    if (n < 0) return;
    if (t->text && (size_t)n < room) {
      t->length += (size_t)n;
      return;
    }
    size_t want = t->length + (size_t)n + 64;
    if (want < 2 * t->capacity) want = 2 * t->capacity;
    char *grown = realloc(t->text, want);
    if (!grown) return;
    t->text = grown;
    t->capacity = want;
  }
}

/* A JSON value as Python's repr() writes the value json.loads gives (messages name what was found). */
static void repr_float(text_t *t, double value) {
  char digits[64];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    snprintf(digits, sizeof digits, "%.*e", precision - 1, value);
    if (strtod(digits, NULL) == value) break;
  }
  int exponent = atoi(strchr(digits, 'e') + 1);
  if (exponent < -4 || exponent >= 16) {
    char mantissa[64];
    snprintf(mantissa, sizeof mantissa, "%.*e", precision - 1, value);
    text_add(t, "%s", mantissa);
    return;
  }
  int decimals = precision - 1 - exponent;
  snprintf(digits, sizeof digits, "%.*f", decimals > 0 ? decimals : 0, value);
  text_add(t, "%s%s", digits, strchr(digits, '.') ? "" : ".0");
}

static void repr_string(text_t *t, const char *s) {
  char quote = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
  text_add(t, "%c", quote);
  for (const unsigned char *c = (const unsigned char *)s; *c; ++c) {
    if (*c == '\\' || *c == (unsigned char)quote) text_add(t, "\\%c", *c);
    else if (*c == '\n') text_add(t, "\\n");
    else if (*c == '\t') text_add(t, "\\t");
    else if (*c == '\r') text_add(t, "\\r");
    else if (*c < 0x20 || *c == 0x7f) text_add(t, "\\x%02x", *c);
    else text_add(t, "%c", *c);
  }
  text_add(t, "%c", quote);
}

static void repr(text_t *t, const json_t *v) {
  if (t->length > 2000) {
    text_add(t, "...");
    return;
  }
  switch (json_typeof(v)) {
    case JSON_OBJECT: {
      const char *key;
      json_t *item;
      int first = 1;
      text_add(t, "{");
      json_object_foreach((json_t *)v, key, item) {
        text_add(t, first ? "" : ", ");
        repr_string(t, key);
        text_add(t, ": ");
        repr(t, item);
        first = 0;
      }
      text_add(t, "}");
      break;
    }
    case JSON_ARRAY:
      text_add(t, "[");
      for (size_t i = 0; i < json_array_size(v); ++i) {
        text_add(t, i ? ", " : "");
        repr(t, json_array_get(v, i));
      }
      text_add(t, "]");
      break;
    case JSON_STRING: repr_string(t, json_string_value(v)); break;
    case JSON_INTEGER: text_add(t, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: repr_float(t, json_real_value(v)); break;
    case JSON_TRUE: text_add(t, "True"); break;
    case JSON_FALSE: text_add(t, "False"); break;
    default: text_add(t, "None"); break;
  }
}

/* What went wrong, as one line: the checks write it and return -1. */
typedef struct {
  char message[MESSAGE_BYTES];
} problem_t;

static int bad(problem_t *p, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(p->message, sizeof p->message, format, args);
  va_end(args);
  for (char *c = p->message; *c; ++c)
    if (*c == '\n' || *c == '\r') *c = ' ';
  return -1;
}

/* bad() with the repr of a JSON value at the end: "<what>, got <value>" */
static int bad_value(problem_t *p, const json_t *value, const char *format, ...) {
  char head[MESSAGE_BYTES];
  va_list args;
  va_start(args, format);
  vsnprintf(head, sizeof head, format, args);
  va_end(args);
  text_t t = {0};
  repr(&t, value);
  bad(p, "%s, got %s", head, t.text ? t.text : "?");
  free(t.text);
  return -1;
}

static void put_error(char *error, size_t size, const char *message) {
  if (error && size) snprintf(error, size, "%s", message);
}

/* ------------------------------------------------------------------------ the program */

enum { INIT_NONE, INIT_WEIGHTS, INIT_ZERO };

typedef struct {
  uint64_t bytes, offset;
  int init;
} buffer_spec;

typedef struct {
  char *name, *module, *entry;
  uint32_t bindings, workgroup[3], groups[3];
  uint8_t *code;
  size_t code_size;
  int has_local_size;
  uint32_t local_size[3];
  uint64_t binding_bytes[MAX_BINDINGS]; /* binding -> bytes the module declares */
  int binding_used[MAX_BINDINGS];
  int has_entry, past_bindings;
  uint32_t largest_binding; /* with past_bindings: the largest binding at or past `bindings` */
  char *entry_names;        /* without has_entry: the module's entry points, for the message */
  VkShaderModule shader;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
} kernel_spec;

typedef struct {
  size_t kernel;
  uint32_t *buffers, count, groups[3];
  char *label;
} dispatch_spec;

typedef struct {
  int target_major, target_minor;
  char precision[8];
  uint32_t input_buffer, output_buffer;
  int32_t input_rank, output_rank;
  int64_t input_shape[8], output_shape[8];
  buffer_spec *buffers;
  size_t buffer_count;
  kernel_spec *kernels;
  size_t kernel_count;
  dispatch_spec *dispatches;
  size_t dispatch_count;
  unsigned features; /* bit i: RT3D_FEATURES[i] is needed by a module */
} program_t;

static void free_program(program_t *p) {
  for (size_t k = 0; k < p->kernel_count; ++k) {
    free(p->kernels[k].name);
    free(p->kernels[k].module);
    free(p->kernels[k].entry);
    free(p->kernels[k].code);
    free(p->kernels[k].entry_names);
  }
  for (size_t d = 0; d < p->dispatch_count; ++d) {
    free(p->dispatches[d].buffers);
    free(p->dispatches[d].label);
  }
  free(p->buffers);
  free(p->kernels);
  free(p->dispatches);
  memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------------ the manifest */

static json_t *get(problem_t *p, json_t *obj, const char *key, const char *where) {
  if (!json_is_object(obj)) {
    bad(p, "%s must be a JSON object", where);
    return NULL;
  }
  json_t *value = json_object_get(obj, key);
  if (!value) bad(p, "%s has no '%s'", where, key);
  return value;
}

static int get_int(problem_t *p, json_t *v, const char *what, long long min, long long max,
                   long long *out) {
  if (!v) return -1;
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
    return bad_value(p, v, "%s must be an integer in [%lld, %lld]", what, min, max);
  *out = json_integer_value(v);
  return 0;
}

static int get_str(problem_t *p, json_t *v, const char *what, char **out) {
  if (!v) return -1;
  if (!json_is_string(v) || json_string_length(v) == 0)
    return bad_value(p, v, "%s must be a non-empty string", what);
  *out = strdup(json_string_value(v));
  return *out ? 0 : bad(p, "out of memory");
}

static int get_number(problem_t *p, json_t *v, const char *what, double *out) {
  if (!json_is_number(v) || !isfinite(json_number_value(v)))
    return bad_value(p, v, "%s must be a finite number", what);
  *out = json_number_value(v);
  return 0;
}

static int get_list(problem_t *p, json_t *v, const char *what) {
  if (!v) return -1;
  return json_is_array(v) ? 0 : bad_value(p, v, "%s must be a list", what);
}

static int get_triple(problem_t *p, json_t *v, const char *what, uint32_t out[3]) {
  if (get_list(p, v, what)) return -1;
  if (json_array_size(v) != 3) return bad_value(p, v, "%s must be 3 integers", what);
  for (size_t i = 0; i < 3; ++i) {
    long long x;
    if (get_int(p, json_array_get(v, i), what, 1, 2147483647LL, &x)) return -1;
    out[i] = (uint32_t)x;
  }
  return 0;
}

/* The object's member `key` (a missing one is a problem of `where`), checked as named "where.key" */
#define FIELD_NAME 160
static json_t *field(problem_t *p, json_t *obj, const char *where, const char *key, char what[FIELD_NAME]) {
  snprintf(what, FIELD_NAME, "%s.%s", where, key);
  return get(p, obj, key, where);
}

static int field_int(problem_t *p, json_t *obj, const char *where, const char *key, long long min,
                     long long max, long long *out) {
  char what[FIELD_NAME];
  return get_int(p, field(p, obj, where, key, what), what, min, max, out);
}

static int field_str(problem_t *p, json_t *obj, const char *where, const char *key, char **out) {
  char what[FIELD_NAME];
  return get_str(p, field(p, obj, where, key, what), what, out);
}

static int field_triple(problem_t *p, json_t *obj, const char *where, const char *key, uint32_t out[3]) {
  char what[FIELD_NAME];
  return get_triple(p, field(p, obj, where, key, what), what, out);
}

static void shape_text(char *out, size_t size, const int64_t *shape, int32_t rank) {
  size_t n = (size_t)snprintf(out, size, "(");
  for (int32_t i = 0; i < rank && n < size; ++i)
    n += (size_t)snprintf(out + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (n < size) snprintf(out + n, size - n, rank == 1 ? ",)" : ")");
}

static int parse_tensor(problem_t *p, json_t *manifest, const char *key, program_t *program,
                        uint32_t *buffer, int64_t shape[8], int32_t *rank) {
  char what[FIELD_NAME];
  json_t *spec = get(p, manifest, key, "the manifest");
  if (!spec) return -1;
  long long id;
  if (field_int(p, spec, key, "buffer", 0, 1LL << 62, &id)) return -1;
  if ((unsigned long long)id >= program->buffer_count)
    return bad(p, "%s.buffer %lld is not one of the %zu buffers", key, id, program->buffer_count);
  json_t *dims = field(p, spec, key, "shape", what);
  if (get_list(p, dims, what)) return -1;
  if (json_array_size(dims) < 1 || json_array_size(dims) > 8)
    return bad_value(p, dims, "%s.shape must have 1 to 8 dimensions", key);
  *rank = (int32_t)json_array_size(dims);
  unsigned __int128 elements = 1;
  int overflow = 0;
  for (int32_t i = 0; i < *rank; ++i) {
    long long d;
    if (get_int(p, json_array_get(dims, (size_t)i), what, 1, 2147483647LL, &d)) return -1;
    shape[i] = d;
    elements *= (unsigned long long)d;
    if (elements >> 64) overflow = 1, elements = (unsigned __int128)1 << 64;
  }
  json_t *dtype = json_object_get(spec, "dtype");
  if (dtype && !(json_is_string(dtype) && !strcmp(json_string_value(dtype), "float32"))) {
    text_t t = {0};
    if (json_is_string(dtype)) text_add(&t, "%s", json_string_value(dtype));
    else repr(&t, dtype);
    bad(p, "%s.dtype is '%s'; this runtime reads float32 only", key, t.text ? t.text : "?");
    free(t.text);
    return -1;
  }
  *buffer = (uint32_t)id;
  uint64_t have = program->buffers[id].bytes;
  if (overflow || 4 * (uint64_t)elements != have) {
    char text[256];
    shape_text(text, sizeof text, shape, *rank);
    if (overflow)
      return bad(p, "%s of shape %s is more than 2^64 bytes but buffer %lld has %llu", key, text, id,
                 (unsigned long long)have);
    return bad(p, "%s of shape %s is %llu bytes but buffer %lld has %llu", key, text,
               (unsigned long long)(4 * (uint64_t)elements), id, (unsigned long long)have);
  }
  return 0;
}

static int one_of(const char *value, const char *const *names, size_t count) {
  for (size_t i = 0; i < count; ++i)
    if (!strcmp(value, names[i])) return (int)i;
  return -1;
}

static void joined(char *out, size_t size, const char *const *names, size_t count) {
  size_t n = 0;
  out[0] = 0;
  for (size_t i = 0; i < count && n < size; ++i)
    n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "", names[i]);
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* parse_manifest of rt3d_mlir/contracts/spirv_artifact.py; has_weights/weights_size: weights.bin */
static int parse_manifest(problem_t *p, json_t *m, int has_weights, uint64_t weights_size,
                          program_t *program) {
  char where[64], what[FIELD_NAME], names[128];
  json_t *v = get(p, m, "format", "the manifest");
  if (!v) return -1;
  if (!json_is_string(v) || strcmp(json_string_value(v), RT3D_FORMAT)) {
    text_t t = {0};
    repr(&t, v);
    bad(p, "manifest format is %s, expected '%s'", t.text ? t.text : "?", RT3D_FORMAT);
    free(t.text);
    return -1;
  }
  v = get(p, m, "version", "the manifest");
  if (!v) return -1;
  if (!json_is_integer(v) || json_integer_value(v) != RT3D_FORMAT_VERSION) {
    text_t t = {0};
    repr(&t, v);
    bad(p, "manifest version is %s; this runtime reads version %d", t.text ? t.text : "?",
        RT3D_FORMAT_VERSION);
    free(t.text);
    return -1;
  }
  v = json_object_get(m, "target_env"); /* default: what the backend emits */
  const char *target_env = !v ? RT3D_TARGET_ENV : json_is_string(v) ? json_string_value(v) : NULL;
  size_t env = 0;
  while (env < COUNT(RT3D_TARGET_ENVS) && !(target_env && !strcmp(target_env, RT3D_TARGET_ENVS[env].name)))
    ++env;
  if (env == COUNT(RT3D_TARGET_ENVS)) {
    const char *envs[COUNT(RT3D_TARGET_ENVS)];
    text_t t = {0};
    for (size_t i = 0; i < COUNT(envs); ++i) envs[i] = RT3D_TARGET_ENVS[i].name;
    joined(names, sizeof names, envs, COUNT(envs));
    repr(&t, v);
    bad(p, "target_env %s is not one of %s", t.text ? t.text : "?", names);
    free(t.text);
    return -1;
  }
  program->target_major = RT3D_TARGET_ENVS[env].major;
  program->target_minor = RT3D_TARGET_ENVS[env].minor;
  v = json_object_get(m, "precision");
  if (v && (!json_is_string(v) || one_of(json_string_value(v), RT3D_PRECISIONS, COUNT(RT3D_PRECISIONS)) < 0)) {
    text_t t = {0};
    repr(&t, v);
    joined(names, sizeof names, RT3D_PRECISIONS, COUNT(RT3D_PRECISIONS));
    bad(p, "precision %s is not one of %s", t.text ? t.text : "?", names);
    free(t.text);
    return -1;
  }
  snprintf(program->precision, sizeof program->precision, "%s", v ? json_string_value(v) : "fp32");

  json_t *list = get(p, m, "buffers", "the manifest");
  if (get_list(p, list, "buffers")) return -1;
  program->buffer_count = json_array_size(list);
  program->buffers = calloc(program->buffer_count + 1, sizeof *program->buffers);
  if (!program->buffers) return bad(p, "out of memory");
  for (size_t i = 0; i < program->buffer_count; ++i) {
    json_t *spec = json_array_get(list, i);
    long long size, offset = 0;
    snprintf(where, sizeof where, "buffers[%zu]", i);
    if (field_int(p, spec, where, "bytes", 4, 1LL << 62, &size)) return -1;
    if (size % 4) return bad(p, "%s.bytes must be a multiple of 4, got %lld", where, size);
    json_t *init = json_object_get(spec, "init");
    int kind = init ? (json_is_string(init)
                           ? one_of(json_string_value(init), RT3D_INIT_KINDS, COUNT(RT3D_INIT_KINDS))
                           : -1)
                    : INIT_NONE;
    if (kind < 0) {
      text_t t = {0};
      repr(&t, init);
      joined(names, sizeof names, RT3D_INIT_KINDS, COUNT(RT3D_INIT_KINDS));
      bad(p, "%s.init is %s, expected one of %s", where, t.text ? t.text : "?", names);
      free(t.text);
      return -1;
    }
    if (kind == INIT_WEIGHTS) {
      if (field_int(p, spec, where, "offset", 0, 1LL << 62, &offset)) return -1;
      if (!has_weights)
        return bad(p, "%s is initialised from weights, but the artifact has no %s", where, RT3D_WEIGHTS);
      if ((uint64_t)offset + (uint64_t)size > weights_size)
        return bad(p, "%s reads %s[%lld:%lld] past its end (%llu bytes)", where, RT3D_WEIGHTS, offset,
                   offset + size, (unsigned long long)weights_size);
    }
    program->buffers[i] = (buffer_spec){(uint64_t)size, (uint64_t)offset, kind};
  }

  list = get(p, m, "kernels", "the manifest");
  if (get_list(p, list, "kernels")) return -1;
  program->kernels = calloc(json_array_size(list) + 1, sizeof *program->kernels);
  if (!program->kernels) return bad(p, "out of memory");
  for (size_t i = 0; i < json_array_size(list); ++i) {
    json_t *spec = json_array_get(list, i);
    kernel_spec *k = &program->kernels[i];
    long long bindings;
    program->kernel_count = i + 1; /* freed with the program from here on */
    snprintf(where, sizeof where, "kernels[%zu]", i);
    if (field_str(p, spec, where, "name", &k->name) || field_str(p, spec, where, "module", &k->module) ||
        field_str(p, spec, where, "entry", &k->entry) ||
        field_int(p, spec, where, "bindings", 1, MAX_BINDINGS, &bindings))
      return -1;
    k->bindings = (uint32_t)bindings;
    if (field_triple(p, spec, where, "workgroup_size", k->workgroup) ||
        field_triple(p, spec, where, "groups", k->groups))
      return -1;
    for (size_t j = 0; j < i; ++j)
      if (!strcmp(program->kernels[j].name, k->name))
        return bad(p, "kernel name '%s' is used twice", k->name);
  }

  list = get(p, m, "dispatches", "the manifest");
  if (get_list(p, list, "dispatches")) return -1;
  program->dispatches = calloc(json_array_size(list) + 1, sizeof *program->dispatches);
  if (!program->dispatches) return bad(p, "out of memory");
  for (size_t i = 0; i < json_array_size(list); ++i) {
    json_t *spec = json_array_get(list, i);
    dispatch_spec *d = &program->dispatches[i];
    program->dispatch_count = i + 1;
    snprintf(where, sizeof where, "dispatches[%zu]", i);
    json_t *name = get(p, spec, "kernel", where);
    if (!name) return -1;
    size_t k = program->kernel_count;
    if (json_is_string(name))
      for (k = 0; k < program->kernel_count; ++k)
        if (!strcmp(program->kernels[k].name, json_string_value(name))) break;
    if (k == program->kernel_count) {
      text_t t = {0};
      repr(&t, name);
      bad(p, "%s refers to unknown kernel %s", where, t.text ? t.text : "?");
      free(t.text);
      return -1;
    }
    d->kernel = k;
    json_t *ids = field(p, spec, where, "buffers", what);
    if (get_list(p, ids, what)) return -1;
    d->count = (uint32_t)(json_array_size(ids) < 4096 ? json_array_size(ids) : 4096);
    d->buffers = calloc(d->count + 1, sizeof *d->buffers);
    if (!d->buffers) return bad(p, "out of memory");
    long long id;
    for (size_t j = 0; j < json_array_size(ids); ++j)
      if (get_int(p, json_array_get(ids, j), what, 0, 1LL << 62, &id)) return -1;
    for (size_t j = 0; j < json_array_size(ids); ++j) {
      id = json_integer_value(json_array_get(ids, j));
      if ((unsigned long long)id >= program->buffer_count)
        return bad(p, "%s refers to unknown buffer %lld (the manifest has %zu)", where, id,
                   program->buffer_count);
      if (j < d->count) d->buffers[j] = (uint32_t)id;
    }
    kernel_spec *kernel = &program->kernels[k];
    if (json_array_size(ids) != kernel->bindings)
      return bad(p, "%s binds %zu buffers, but kernel '%s' has %u bindings", where, json_array_size(ids),
                 kernel->name, kernel->bindings);
    if (field_triple(p, spec, where, "groups", d->groups)) return -1;
    if (memcmp(d->groups, kernel->groups, sizeof d->groups))
      return bad(p, "%s launches a (%u, %u, %u) grid, but kernel '%s' was built for (%u, %u, %u)", where,
                 d->groups[0], d->groups[1], d->groups[2], kernel->name, kernel->groups[0],
                 kernel->groups[1], kernel->groups[2]);
    json_t *label = json_object_get(spec, "label");
    text_t t = {0};
    int falsy = !label || json_is_null(label) || json_is_false(label) ||
                (json_is_string(label) && !json_string_length(label)) ||
                (json_is_integer(label) && !json_integer_value(label)) ||
                (json_is_real(label) && json_real_value(label) == 0.0) ||
                (json_is_array(label) && !json_array_size(label)) ||
                (json_is_object(label) && !json_object_size(label));
    if (falsy) text_add(&t, "%s", kernel->name);
    else if (json_is_string(label)) text_add(&t, "%s", json_string_value(label));
    else repr(&t, label);
    d->label = t.text;
    if (!d->label) return bad(p, "out of memory");
    double flops = 0, dense;
    json_t *number = json_object_get(spec, "flops");
    snprintf(what, sizeof what, "%s.flops", where);
    if (number && get_number(p, number, what, &flops)) return -1;
    number = json_object_get(spec, "dense_flops");
    snprintf(what, sizeof what, "%s.dense_flops", where);
    if (number && get_number(p, number, what, &dense)) return -1;
  }
  if (!program->dispatch_count) return bad(p, "the manifest has no dispatches");

  if (parse_tensor(p, m, "input", program, &program->input_buffer, program->input_shape,
                   &program->input_rank))
    return -1;
  if (parse_tensor(p, m, "output", program, &program->output_buffer, program->output_shape,
                   &program->output_rank))
    return -1;
  if (program->buffers[program->input_buffer].init != INIT_NONE)
    return bad(p, "the input buffer %u must have init 'none'", program->input_buffer);
  double total;
  json_t *number = json_object_get(m, "flops");
  if (number && get_number(p, number, "flops", &total)) return -1;
  number = json_object_get(m, "dense_flops");
  if (number && get_number(p, number, "dense_flops", &total)) return -1;
  return 0;
}

/* ------------------------------------------------------------------------ SPIR-V modules */

/* Opcodes and enumerants of the SPIR-V specification (as in rt3d_mlir/runtime/spirv_artifact.py) */
enum {
  OP_ENTRY_POINT = 15, OP_EXECUTION_MODE = 16, OP_CAPABILITY = 17, OP_TYPE_INT = 21,
  OP_TYPE_FLOAT = 22, OP_TYPE_VECTOR = 23, OP_TYPE_ARRAY = 28, OP_TYPE_RUNTIME_ARRAY = 29,
  OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32, OP_CONSTANT = 43, OP_VARIABLE = 59, OP_DECORATE = 71,
  OP_MEMBER_DECORATE = 72, GL_COMPUTE = 5, LOCAL_SIZE = 17, DECORATION_ARRAY_STRIDE = 6,
  DECORATION_BINDING = 33, DECORATION_SET = 34, DECORATION_OFFSET = 35, STORAGE_BUFFER = 12,
  UNIFORM = 2
};
enum { T_SCALAR = 1, T_VECTOR, T_ARRAY, T_RUNTIME_ARRAY, T_STRUCT, T_POINTER };

/* A map from 64-bit keys to records: appended in module order, then sorted; a lookup finds the
 * last record of a key (a later definition replaces an earlier one, as a Python dict does). */
typedef struct {
  uint64_t key;
  uint32_t order, kind, a, b, c;
} record_t;

typedef struct {
  record_t *items;
  size_t count, capacity;
} table_t;

static int table_add(table_t *t, uint64_t key, uint32_t kind, uint32_t a, uint32_t b, uint32_t c) {
  if (t->count == t->capacity) {
    size_t grown = t->capacity ? 2 * t->capacity : 64;
    record_t *items = realloc(t->items, grown * sizeof *items);
    if (!items) return -1;
    t->items = items, t->capacity = grown;
  }
  t->items[t->count] = (record_t){key, (uint32_t)t->count, kind, a, b, c};
  t->count++;
  return 0;
}

static int record_order(const void *x, const void *y) {
  const record_t *r = x, *s = y;
  if (r->key != s->key) return r->key < s->key ? -1 : 1;
  return r->order < s->order ? -1 : r->order > s->order;
}

static void table_sort(table_t *t) {
  if (t->count) qsort(t->items, t->count, sizeof *t->items, record_order);
}

static const record_t *table_find(const table_t *t, uint64_t key) {
  size_t lo = 0, hi = t->count;
  while (lo < hi) { /* the first record past key */
    size_t mid = (lo + hi) / 2;
    if (t->items[mid].key <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo && t->items[lo - 1].key == key ? &t->items[lo - 1] : NULL;
}

#define PAIR(x, y) (((uint64_t)(x) << 32) | (uint32_t)(y))

typedef struct {
  table_t types, constants, decorations, member_offset, local_size;
  table_t entries;   /* key: order; a: entry id; name in names[] */
  table_t variables; /* key: order; a: id, b: pointer type, c: storage class */
  char **names;
} module_tables;

static void free_tables(module_tables *m) {
  for (size_t i = 0; i < m->entries.count; ++i) free(m->names[i]);
  free(m->names);
  free(m->types.items), free(m->constants.items), free(m->decorations.items);
  free(m->member_offset.items), free(m->local_size.items), free(m->entries.items);
  free(m->variables.items);
}

static int buffer_bytes(problem_t *p, module_tables *m, uint32_t pointer, const char *where,
                        uint64_t *bytes) {
  const record_t *pointee = table_find(&m->types, pointer);
  if (!pointee || pointee->kind != T_POINTER) return bad(p, "%s declares a buffer of an unknown type", where);
  uint32_t struct_id = pointee->b;
  const record_t *block = table_find(&m->types, struct_id);
  if (!block || block->kind != T_STRUCT || !block->b)
    return bad(p, "%s declares a buffer that is not a block", where);
  const record_t *member = table_find(&m->types, block->a);
  const record_t *offset = table_find(&m->member_offset, struct_id);
  uint64_t base = offset ? offset->a : 0;
  if (!member) return bad(p, "%s declares a buffer of an unknown member type", where);
  if (member->kind == T_RUNTIME_ARRAY)
    return bad(p, "%s declares an unsized buffer; this runtime needs every size in the module", where);
  if (member->kind == T_ARRAY) {
    const record_t *length = table_find(&m->constants, member->b);
    const record_t *stride = table_find(&m->decorations, PAIR(block->a, DECORATION_ARRAY_STRIDE));
    if (!length || !stride)
      return bad(p, "%s declares an array buffer without a constant length and stride", where);
    *bytes = base + (uint64_t)length->a * stride->a;
    return 0;
  }
  if (member->kind == T_SCALAR) {
    *bytes = base + member->a;
    return 0;
  }
  if (member->kind == T_VECTOR) {
    const record_t *element = table_find(&m->types, member->a);
    if (element && element->kind == T_SCALAR) {
      *bytes = base + (uint64_t)element->a * member->b;
      return 0;
    }
  }
  return bad(p, "%s declares a buffer member this runtime cannot size", where);
}

/* module_interface of rt3d_mlir/runtime/spirv_artifact.py: the kernel's entry point and local
 * size, and the bytes of every binding it declares (the checks come after every module is read). */
static int module_interface(problem_t *p, kernel_spec *k, unsigned *features) {
  const char *where = k->module;
  if (k->code_size < 20 || k->code_size % 4)
    return bad(p, "%s is not a SPIR-V module (%zu bytes)", where, k->code_size);
  size_t n = k->code_size / 4;
  const uint32_t *w = (const uint32_t *)k->code;
  if (w[0] != 0x07230203u) return bad(p, "%s is not a SPIR-V module (bad magic number)", where);
  module_tables m = {0};
  int status = -1, oom = 0;
  for (size_t i = 5; i < n;) {
    uint32_t count = w[i] >> 16, opcode = w[i] & 0xFFFF;
    if (count == 0 || i + count > n) {
      bad(p, "%s is a truncated SPIR-V module", where);
      goto done;
    }
    uint32_t ops = count - 1; /* operands after the opcode word */
    const uint32_t *op = w + i + 1;
    if (opcode == OP_CAPABILITY && ops >= 1) {
      size_t c = 0;
      for (; c < COUNT(RT3D_FEATURE_CAPABILITIES); ++c)
        if (RT3D_FEATURE_CAPABILITIES[c].capability == op[0]) break;
      if (c < COUNT(RT3D_FEATURE_CAPABILITIES)) {
        *features |= 1u << RT3D_FEATURE_CAPABILITIES[c].feature;
      } else {
        size_t b = 0;
        for (; b < COUNT(RT3D_BASE_CAPABILITIES); ++b)
          if (RT3D_BASE_CAPABILITIES[b] == op[0]) break;
        if (b == COUNT(RT3D_BASE_CAPABILITIES)) {
          bad(p, "%s declares SPIR-V capability %u, which this runtime cannot use", where, op[0]);
          goto done;
        }
      }
    } else if (opcode == OP_ENTRY_POINT && count >= 4 && op[0] == GL_COMPUTE) {
      size_t bytes = 4 * (size_t)(count - 3);
      char *name = malloc(bytes + 1);
      char **names = realloc(m.names, (m.entries.count + 1) * sizeof *names);
      if (!name || !names) {
        free(name);
        if (names) m.names = names;
        oom = 1;
        goto done;
      }
      memcpy(name, op + 2, bytes);
      name[bytes] = 0;
      m.names = names;
      m.names[m.entries.count] = name;
      oom |= table_add(&m.entries, m.entries.count, 0, op[1], 0, 0);
    } else if (opcode == OP_EXECUTION_MODE && ops >= 5 && op[1] == LOCAL_SIZE) {
      oom |= table_add(&m.local_size, op[0], op[2], op[3], op[4], 0);
    } else if (opcode == OP_DECORATE && ops >= 2) {
      oom |= table_add(&m.decorations, PAIR(op[0], op[1]), 0, ops > 2 ? op[2] : 0, 0, 0);
    } else if (opcode == OP_MEMBER_DECORATE && ops >= 4) {
      if (op[1] == 0 && op[2] == DECORATION_OFFSET) oom |= table_add(&m.member_offset, op[0], 0, op[3], 0, 0);
    } else if ((opcode == OP_TYPE_INT || opcode == OP_TYPE_FLOAT) && ops >= 2) {
      oom |= table_add(&m.types, op[0], T_SCALAR, op[1] / 8, 0, 0);
    } else if (opcode == OP_TYPE_VECTOR && ops >= 3) {
      oom |= table_add(&m.types, op[0], T_VECTOR, op[1], op[2], 0);
    } else if (opcode == OP_TYPE_ARRAY && ops >= 3) {
      oom |= table_add(&m.types, op[0], T_ARRAY, op[1], op[2], 0);
    } else if (opcode == OP_TYPE_RUNTIME_ARRAY && ops >= 2) {
      oom |= table_add(&m.types, op[0], T_RUNTIME_ARRAY, op[1], 0, 0);
    } else if (opcode == OP_TYPE_STRUCT && ops >= 1) {
      /* a: the first member's type, b: whether it has one */
      oom |= table_add(&m.types, op[0], T_STRUCT, ops >= 2 ? op[1] : 0, ops >= 2, 0);
    } else if (opcode == OP_TYPE_POINTER && ops >= 3) {
      oom |= table_add(&m.types, op[0], T_POINTER, op[1], op[2], 0);
    } else if (opcode == OP_CONSTANT && ops >= 3) {
      oom |= table_add(&m.constants, op[1], 0, op[2], 0, 0);
    } else if (opcode == OP_VARIABLE && ops >= 3) {
      oom |= table_add(&m.variables, m.variables.count, 0, op[1], op[0], op[2]);
    }
    if (oom) goto done;
    i += count;
  }
  table_sort(&m.types), table_sort(&m.constants), table_sort(&m.decorations);
  table_sort(&m.member_offset), table_sort(&m.local_size);
  for (size_t v = 0; v < m.variables.count; ++v) {
    const record_t *var = &m.variables.items[v];
    if (var->c != STORAGE_BUFFER && var->c != UNIFORM) continue;
    const record_t *binding = table_find(&m.decorations, PAIR(var->a, DECORATION_BINDING));
    if (!binding) continue;
    const record_t *set = table_find(&m.decorations, PAIR(var->a, DECORATION_SET));
    if (set && set->a != 0) {
      bad(p, "%s binds a buffer in descriptor set %u", where, set->a);
      goto done;
    }
    uint64_t size = 0;
    if (buffer_bytes(p, &m, var->b, where, &size)) goto done;
    if (binding->a >= k->bindings) { /* refused by check_program_against_modules, after the entry point */
      if (!k->past_bindings || binding->a > k->largest_binding) k->largest_binding = binding->a;
      k->past_bindings = 1;
      continue;
    }
    k->binding_used[binding->a] = 1;
    if (size > k->binding_bytes[binding->a]) k->binding_bytes[binding->a] = size;
  }
  /* the entry point: the last GLCompute entry point of that name (a dict keyed by id, then name) */
  const record_t *entry = NULL;
  for (size_t e = 0; e < m.entries.count; ++e)
    if (!strcmp(m.names[e], k->entry)) entry = &m.entries.items[e];
  if (entry) {
    const record_t *size = table_find(&m.local_size, entry->a);
    k->has_entry = 1;
    if (size) {
      k->has_local_size = 1;
      k->local_size[0] = size->kind, k->local_size[1] = size->a, k->local_size[2] = size->b;
    }
  } else {
    /* for the message: sorted, unique names (Python: ", ".join(sorted(entries)) or "none") */
    char **sorted = calloc(m.entries.count + 1, sizeof *sorted);
    size_t unique = 0;
    text_t found = {0};
    for (size_t e = 0; sorted && e < m.entries.count; ++e) {
      size_t at = 0;
      while (at < unique && strcmp(sorted[at], m.names[e]) < 0) ++at;
      if (at < unique && !strcmp(sorted[at], m.names[e])) continue;
      memmove(sorted + at + 1, sorted + at, (unique - at) * sizeof *sorted);
      sorted[at] = m.names[e], ++unique;
    }
    for (size_t e = 0; e < unique; ++e) text_add(&found, "%s%s", e ? ", " : "", sorted[e]);
    k->entry_names = unique && found.text ? found.text : strdup("none");
    if (!(unique && found.text)) free(found.text);
    free(sorted);
  }
  status = 0;
done:
  if (oom) bad(p, "out of memory reading %s", where);
  free_tables(&m);
  return status;
}

/* check_program_against_modules of rt3d_mlir/runtime/spirv_artifact.py */
static int check_program_against_modules(problem_t *p, program_t *program) {
  for (size_t i = 0; i < program->kernel_count; ++i) {
    kernel_spec *k = &program->kernels[i];
    if (!k->has_entry)
      return bad(p, "%s has no GLCompute entry point '%s' (it has %s)", k->module, k->entry,
                 k->entry_names ? k->entry_names : "none");
    if (k->has_local_size && memcmp(k->local_size, k->workgroup, sizeof k->workgroup))
      return bad(p, "kernel '%s' runs (%u, %u, %u) invocations per workgroup, not (%u, %u, %u)", k->name,
                 k->local_size[0], k->local_size[1], k->local_size[2], k->workgroup[0], k->workgroup[1],
                 k->workgroup[2]);
    if (k->past_bindings)
      return bad(p, "%s uses binding %u, but kernel '%s' declares %u bindings", k->module,
                 k->largest_binding, k->name, k->bindings);
  }
  for (size_t i = 0; i < program->dispatch_count; ++i) {
    dispatch_spec *d = &program->dispatches[i];
    kernel_spec *k = &program->kernels[d->kernel];
    for (uint32_t b = 0; b < k->bindings; ++b) {
      if (!k->binding_used[b]) continue;
      uint32_t buffer = d->buffers[b];
      uint64_t have = program->buffers[buffer].bytes;
      if (have < k->binding_bytes[b])
        return bad(p,
                   "dispatches[%zu] ('%s') binds buffer %u of %llu bytes to binding %u, where kernel '%s' "
                   "accesses %llu bytes",
                   i, d->label, buffer, (unsigned long long)have, b, k->name,
                   (unsigned long long)k->binding_bytes[b]);
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ the ZIP file */

typedef struct {
  unzFile zip;
  const char *path;
  problem_t *p;
  int zip_error; /* the problem is the container's, not the contents' */
} archive_t;

static int zip_fail(archive_t *a, const char *format, ...) {
  va_list args;
  char line[MESSAGE_BYTES];
  va_start(args, format);
  vsnprintf(line, sizeof line, format, args);
  va_end(args);
  a->zip_error = 1;
  return bad(a->p, "%s", line);
}

/* Select member `name`; 0 if present, 1 if absent. */
static int locate(archive_t *a, const char *name, unz_file_info64 *info) {
  if (unzLocateFile(a->zip, name, 1) != UNZ_OK) return 1;
  if (unzGetCurrentFileInfo64(a->zip, info, NULL, 0, NULL, 0, NULL, 0) != UNZ_OK)
    return zip_fail(a, "the ZIP entry of %s is corrupt", name);
  if (info->flag & 1) return zip_fail(a, "%s is encrypted", name);
  return 0;
}

/* The selected member's bytes, refusing to inflate more than `limit` (its header may lie). */
static int bounded_read(archive_t *a, const char *name, const unz_file_info64 *info, uint64_t limit,
                        uint8_t **data, size_t *size) {
  if (info->uncompressed_size > limit)
    return bad(a->p, "%s claims %llu bytes, more than the %llu allowed", name,
               (unsigned long long)info->uncompressed_size, (unsigned long long)limit);
  size_t claimed = (size_t)info->uncompressed_size;
  uint8_t *buffer = malloc(claimed + 1);
  if (!buffer) return bad(a->p, "out of memory reading %s", name);
  if (unzOpenCurrentFile(a->zip) != UNZ_OK) {
    free(buffer);
    return zip_fail(a, "cannot open %s (compression method %lu)", name, (unsigned long)info->compression_method);
  }
  size_t got = 0;
  for (;;) {
    size_t want = claimed + 1 - got;
    int n = unzReadCurrentFile(a->zip, buffer + got, (unsigned)(want < (1u << 30) ? want : (1u << 30)));
    if (n < 0) {
      unzCloseCurrentFile(a->zip);
      free(buffer);
      return zip_fail(a, "%s is corrupt (error %d)", name, n);
    }
    if (n == 0) break;
    got += (size_t)n;
    if (got > claimed) {
      unzCloseCurrentFile(a->zip);
      free(buffer);
      return bad(a->p, "%s inflates past %llu bytes", name, (unsigned long long)claimed);
    }
  }
  int closed = unzCloseCurrentFile(a->zip);
  if (got != claimed) {
    free(buffer);
    return zip_fail(a, "%s is truncated", name);
  }
  if (closed == UNZ_CRCERROR) {
    free(buffer);
    return zip_fail(a, "Bad CRC-32 for file '%s'", name);
  }
  *data = buffer, *size = got;
  return 0;
}

/* weights.bin: a read-only map of a stored member, or the inflated bytes of a compressed one */
typedef struct {
  const uint8_t *bytes;
  size_t size;
  void *map;
  size_t map_size;
  uint8_t *owned;
} weights_t;

static void free_weights(weights_t *w) {
  if (w->map) munmap(w->map, w->map_size);
  free(w->owned);
  memset(w, 0, sizeof *w);
}

static int read_weights(archive_t *a, const unz_file_info64 *info, const program_t *program,
                        weights_t *w) {
  if (info->uncompressed_size == 0) return 0;
  if (info->compression_method == 0) {
    if (unzOpenCurrentFile(a->zip) != UNZ_OK) return zip_fail(a, "cannot open %s", RT3D_WEIGHTS);
    ZPOS64_T start = unzGetCurrentFileZStreamPos64(a->zip);
    unzCloseCurrentFile(a->zip);
    struct stat st;
    int fd = open(a->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st)) {
      if (fd >= 0) close(fd);
      return zip_fail(a, "cannot open the file again: %s", strerror(errno));
    }
    if (start == 0 || start + info->uncompressed_size > (uint64_t)st.st_size) {
      close(fd);
      return bad(a->p, "%s is truncated", RT3D_WEIGHTS);
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t skew = (size_t)(start % page);
    w->map_size = skew + (size_t)info->uncompressed_size;
    w->map = mmap(NULL, w->map_size, PROT_READ, MAP_PRIVATE, fd, (off_t)(start - skew));
    close(fd);
    if (w->map == MAP_FAILED) {
      w->map = NULL;
      return zip_fail(a, "cannot map %s: %s", RT3D_WEIGHTS, strerror(errno));
    }
    w->bytes = (const uint8_t *)w->map + skew;
    w->size = (size_t)info->uncompressed_size;
    return 0;
  }
  uint64_t needed = 0;
  for (size_t i = 0; i < program->buffer_count; ++i)
    if (program->buffers[i].init == INIT_WEIGHTS && program->buffers[i].offset + program->buffers[i].bytes > needed)
      needed = program->buffers[i].offset + program->buffers[i].bytes;
  /* the writer aligns every constant; allow that slack and no more */
  if (bounded_read(a, RT3D_WEIGHTS, info, needed + 4096, &w->owned, &w->size)) return -1;
  w->bytes = w->owned;
  return 0;
}

/* read_artifact of rt3d_mlir/runtime/spirv_artifact.py: the checked program, modules, weights */
static int read_artifact(archive_t *a, program_t *program, weights_t *weights) {
  unz_file_info64 info;
  int absent = locate(a, RT3D_MANIFEST, &info);
  if (absent < 0) return -1;
  if (absent) return bad(a->p, "it has no %s", RT3D_MANIFEST);
  uint8_t *text;
  size_t size;
  if (bounded_read(a, RT3D_MANIFEST, &info, RT3D_MAX_MANIFEST_BYTES, &text, &size)) return -1;
  json_error_t error;
  json_t *manifest = json_loadb((const char *)text, size, JSON_DECODE_ANY, &error);
  free(text);
  if (!manifest) return bad(a->p, "%s is not valid JSON: %s (line %d)", RT3D_MANIFEST, error.text, error.line);
  unz_file_info64 weights_info;
  int no_weights = locate(a, RT3D_WEIGHTS, &weights_info);
  if (no_weights < 0) {
    json_decref(manifest);
    return -1;
  }
  int status = parse_manifest(a->p, manifest, !no_weights, no_weights ? 0 : weights_info.uncompressed_size, program);
  json_decref(manifest);
  if (status) return -1;
  uint64_t total = 0;
  for (size_t k = 0; k < program->kernel_count; ++k) {
    kernel_spec *kernel = &program->kernels[k];
    unz_file_info64 module_info;
    int missing = locate(a, kernel->module, &module_info);
    if (missing < 0) return -1;
    if (missing)
      return bad(a->p, "kernel '%s' needs %s, which the artifact lacks", kernel->name, kernel->module);
    if (bounded_read(a, kernel->module, &module_info, RT3D_MAX_MODULE_BYTES, &kernel->code, &kernel->code_size))
      return -1;
    total += kernel->code_size;
    if (total > RT3D_MAX_MODULES_BYTES)
      return bad(a->p, "its kernel modules exceed %llu bytes together", (unsigned long long)RT3D_MAX_MODULES_BYTES);
    if (module_interface(a->p, kernel, &program->features)) return -1;
  }
  if (check_program_against_modules(a->p, program)) return -1;
  if (!no_weights) {
    if (locate(a, RT3D_WEIGHTS, &weights_info) != 0) return zip_fail(a, "cannot read %s", RT3D_WEIGHTS);
    if (read_weights(a, &weights_info, program, weights)) return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------ the device */

struct rt3d_vk_model {
  pthread_mutex_t lock;
  char *path;
  program_t program;
  char device_name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE + 32];
  int robust;
  VkInstance instance;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  VkCommandPool command_pool;
  VkFence fence;
  VkCommandBuffer command;
  uint32_t memory_types;
  VkMemoryPropertyFlags memory_flags[VK_MAX_MEMORY_TYPES];
  VkBuffer *buffers;
  VkDeviceMemory *memories;
  VkBuffer input_staging, output_staging;
  VkDeviceMemory input_memory, output_memory;
  void *input_map, *output_map;
  size_t input_bytes, output_bytes;
  VkDescriptorPool descriptor_pool;
  VkDescriptorSet *sets;
};

static const char *result_name(VkResult r) {
  switch (r) {
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VkErrorOutOfHostMemory";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VkErrorOutOfDeviceMemory";
    case VK_ERROR_INITIALIZATION_FAILED: return "VkErrorInitializationFailed";
    case VK_ERROR_DEVICE_LOST: return "VkErrorDeviceLost";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VkErrorMemoryMapFailed";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VkErrorExtensionNotPresent";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VkErrorFeatureNotPresent";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VkErrorIncompatibleDriver";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VkErrorTooManyObjects";
    case VK_ERROR_INVALID_SHADER_NV: return "VkErrorInvalidShaderNV";
    case VK_TIMEOUT: return "VkTimeout";
    default: return "VkError";
  }
}

/* One line for a failed Vulkan call while `stage` (the messages of the Python runtime). */
static int vulkan_fail(problem_t *p, rt3d_vk_model *m, VkResult r, const char *stage) {
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY) {
    uint64_t need = 0;
    for (size_t i = 0; i < m->program.buffer_count; ++i) need += m->program.buffers[i].bytes;
    return bad(p, "out of device memory on %s while %s ('%s' needs %.0f MiB of buffers)",
               m->device_name[0] ? m->device_name : "the Vulkan device", stage, m->path,
               (double)need / (1 << 20));
  }
  if (r == VK_ERROR_OUT_OF_HOST_MEMORY) return bad(p, "out of host memory while %s for '%s'", stage, m->path);
  return bad(p, "Vulkan error %s (%d) while %s for '%s'", result_name(r), (int)r, stage, m->path);
}

#define VK_TRY(call, stage)                                         \
  do {                                                              \
    VkResult result_ = (call);                                      \
    if (result_ != VK_SUCCESS) return vulkan_fail(p, m, result_, stage); \
  } while (0)

static const char *device_type(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

static int preference(VkPhysicalDeviceType type) { /* GPUs first, the CPU last */
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 4;
    default: return 3;
  }
}

static int contains_folded(const char *text, const char *part) {
  size_t n = strlen(part);
  if (!n) return 0;
  for (; *text; ++text) {
    size_t i = 0;
    while (i < n && text[i]) {
      char x = text[i], y = part[i];
      if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
      if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
      if (x != y) break;
      ++i;
    }
    if (i == n) return 1;
  }
  return 0;
}

static int select_device(problem_t *p, rt3d_vk_model *m, const char *selector, VkPhysicalDeviceProperties *chosen) {
  uint32_t count = 0;
  VkResult r = vkEnumeratePhysicalDevices(m->instance, &count, NULL);
  if (r == VK_ERROR_INITIALIZATION_FAILED) count = 0;
  else if (r != VK_SUCCESS) return vulkan_fail(p, m, r, "listing the devices");
  if (!count) return bad(p, "no Vulkan device: %s", RT3D_NO_DEVICE_HINT);
  VkPhysicalDevice *devices = calloc(count, sizeof *devices);
  VkPhysicalDeviceProperties *props = calloc(count, sizeof *props);
  char (*names)[sizeof m->device_name] = calloc(count, sizeof *names);
  int status = -1;
  if (!devices || !props || !names) {
    bad(p, "out of memory");
    goto done;
  }
  r = vkEnumeratePhysicalDevices(m->instance, &count, devices);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
    vulkan_fail(p, m, r, "listing the devices");
    goto done;
  }
  for (uint32_t i = 0; i < count; ++i) {
    vkGetPhysicalDeviceProperties(devices[i], &props[i]);
    snprintf(names[i], sizeof names[i], "%s (%s)", props[i].deviceName, device_type(props[i].deviceType));
  }
  uint32_t pick = count;
  if (!selector) {
    pick = 0;
    for (uint32_t i = 1; i < count; ++i)
      if (preference(props[i].deviceType) < preference(props[pick].deviceType)) pick = i;
  } else {
    const char *s = selector;
    while (*s == ' ' || *s == '\t') ++s;
    char text[256];
    snprintf(text, sizeof text, "%s", s);
    for (size_t n = strlen(text); n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n');)
      text[--n] = 0;
    int digits = text[0] != 0;
    for (const char *c = text; *c; ++c) digits &= (*c >= '0' && *c <= '9');
    if (digits) {
      unsigned long index = strlen(text) < 10 ? strtoul(text, NULL, 10) : count;
      if (index < count) pick = (uint32_t)index;
    } else {
      for (uint32_t i = 0; i < count && pick == count; ++i)
        if (contains_folded(names[i], text)) pick = i;
    }
  }
  if (pick == count) {
    text_t available = {0};
    for (uint32_t i = 0; i < count; ++i) text_add(&available, "%s%u: %s", i ? "; " : "", i, names[i]);
    bad(p, "no Vulkan device matches '%s' (available: %s)", selector, available.text ? available.text : "");
    free(available.text);
    goto done;
  }
  m->physical = devices[pick];
  *chosen = props[pick];
  snprintf(m->device_name, sizeof m->device_name, "%s", names[pick]);
  status = 0;
done:
  free(devices), free(props), free(names);
  return status;
}

static int check_limits(problem_t *p, rt3d_vk_model *m, const VkPhysicalDeviceLimits *limits) {
  const program_t *program = &m->program;
  uint64_t largest = 0, most = 0;
  for (size_t i = 0; i < program->buffer_count; ++i)
    if (program->buffers[i].bytes > largest) largest = program->buffers[i].bytes;
  if (largest > limits->maxStorageBufferRange)
    return bad(p, "'%s' has a buffer of %llu bytes, over %s's storage buffer limit of %u bytes", m->path,
               (unsigned long long)largest, m->device_name, limits->maxStorageBufferRange);
  for (size_t k = 0; k < program->kernel_count; ++k)
    if (program->kernels[k].bindings > most) most = program->kernels[k].bindings;
  if (most > limits->maxPerStageDescriptorStorageBuffers)
    return bad(p, "'%s' has a kernel with %llu bindings; %s allows %u storage buffers per shader", m->path,
               (unsigned long long)most, m->device_name, limits->maxPerStageDescriptorStorageBuffers);
  for (size_t i = 0; i < program->dispatch_count; ++i)
    for (int axis = 0; axis < 3; ++axis)
      if (program->dispatches[i].groups[axis] > limits->maxComputeWorkGroupCount[axis])
        return bad(p, "'%s': dispatch '%s' launches %u workgroups along axis %d; %s allows %u", m->path,
                   program->dispatches[i].label, program->dispatches[i].groups[axis], axis, m->device_name,
                   limits->maxComputeWorkGroupCount[axis]);
  return 0;
}

/* The device features the kernels need (fp16 and int8 builds), with their extensions where the
 * instance's or the device's Vulkan version predates them; a clear error if one is missing. */
typedef struct {
  VkPhysicalDevice16BitStorageFeatures storage;
  VkPhysicalDeviceShaderFloat16Int8Features float16;
  VkPhysicalDeviceShaderIntegerDotProductFeatures dot;
  const char *extensions[COUNT(RT3D_FEATURES)];
  uint32_t extension_count;
} feature_chain;

static VkBool32 *feature_field(feature_chain *c, size_t feature) {
  const char *name = RT3D_FEATURES[feature].name;
  if (!strcmp(name, "shaderFloat16")) return &c->float16.shaderFloat16;
  if (!strcmp(name, "storageBuffer16BitAccess")) return &c->storage.storageBuffer16BitAccess;
  if (!strcmp(name, "shaderIntegerDotProduct")) return &c->dot.shaderIntegerDotProduct;
  return NULL;
}

static void chain_init(feature_chain *c) {
  memset(c, 0, sizeof *c);
  c->dot.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES;
  c->float16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
  c->float16.pNext = &c->dot;
  c->storage.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
  c->storage.pNext = &c->float16;
}

static int feature_chain_for(problem_t *p, rt3d_vk_model *m, uint32_t api, feature_chain *enabled) {
  chain_init(enabled);
  unsigned needed = m->program.features;
  if (!needed) return 0;
  feature_chain offered;
  chain_init(&offered);
  VkPhysicalDeviceFeatures2 query = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &offered.storage, {0}};
  vkGetPhysicalDeviceFeatures2(m->physical, &query);
  uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(m->physical, NULL, &count, NULL);
  VkExtensionProperties *extensions = calloc(count + 1, sizeof *extensions);
  if (!extensions) return bad(p, "out of memory");
  vkEnumerateDeviceExtensionProperties(m->physical, NULL, &count, extensions);
  int major = (int)VK_API_VERSION_MAJOR(api), minor = (int)VK_API_VERSION_MINOR(api);
  if (major > RT3D_INSTANCE_API_MAJOR || (major == RT3D_INSTANCE_API_MAJOR && minor > RT3D_INSTANCE_API_MINOR))
    major = RT3D_INSTANCE_API_MAJOR, minor = RT3D_INSTANCE_API_MINOR;
  char missing[256] = "";
  size_t missing_length = 0;
  for (size_t f = 0; f < COUNT(RT3D_FEATURES); ++f) { /* RT3D_FEATURES is sorted by name */
    if (!(needed >> f & 1)) continue;
    int offered_here = *feature_field(&offered, f) != VK_FALSE;
    int core = major > RT3D_FEATURES[f].core_major ||
               (major == RT3D_FEATURES[f].core_major && minor >= RT3D_FEATURES[f].core_minor);
    if (!core) {
      int present = 0;
      for (uint32_t e = 0; e < count; ++e)
        present |= !strcmp(extensions[e].extensionName, RT3D_FEATURES[f].extension);
      if (!present) offered_here = 0;
      else {
        int listed = 0;
        for (uint32_t e = 0; e < enabled->extension_count; ++e)
          listed |= !strcmp(enabled->extensions[e], RT3D_FEATURES[f].extension);
        if (!listed) enabled->extensions[enabled->extension_count++] = RT3D_FEATURES[f].extension;
      }
    }
    if (!offered_here)
      missing_length += (size_t)snprintf(missing + missing_length, sizeof missing - missing_length, "%s%s",
                                         missing_length ? " and " : "", RT3D_FEATURES[f].name);
    *feature_field(enabled, f) = VK_TRUE;
  }
  free(extensions);
  if (missing_length)
    return bad(p, "'%s' computes in %s and needs %s, which %s does not offer; compile it with "
                  "--precision fp32 for this device",
               m->path, m->program.precision, missing, m->device_name);
  return 0;
}

static int open_device(problem_t *p, rt3d_vk_model *m, const char *selector) {
  VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "rt3d-mlir";
  app.pEngineName = "rt3d-mlir";
  app.apiVersion = VK_MAKE_VERSION(RT3D_INSTANCE_API_MAJOR, RT3D_INSTANCE_API_MINOR, 0);
  VkInstanceCreateInfo instance_info = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  instance_info.pApplicationInfo = &app;
  VkResult r = vkCreateInstance(&instance_info, NULL, &m->instance);
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
    m->instance = VK_NULL_HANDLE;
    return bad(p, "no Vulkan device: %s", RT3D_NO_DEVICE_HINT);
  }
  if (r != VK_SUCCESS) {
    m->instance = VK_NULL_HANDLE;
    return vulkan_fail(p, m, r, "creating the Vulkan instance");
  }
  VkPhysicalDeviceProperties props;
  memset(&props, 0, sizeof props);
  if (select_device(p, m, selector, &props)) return -1;
  uint32_t api = props.apiVersion;
  int major = (int)VK_API_VERSION_MAJOR(api), minor = (int)VK_API_VERSION_MINOR(api);
  if (major < m->program.target_major || (major == m->program.target_major && minor < m->program.target_minor))
    return bad(p, "%s supports Vulkan %d.%d, but '%s' needs vulkan%d.%d", m->device_name, major, minor, m->path,
               m->program.target_major, m->program.target_minor);
  if (check_limits(p, m, &props.limits)) return -1;
  uint32_t families = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(m->physical, &families, NULL);
  VkQueueFamilyProperties *family_props = calloc(families + 1, sizeof *family_props);
  if (!family_props) return bad(p, "out of memory");
  vkGetPhysicalDeviceQueueFamilyProperties(m->physical, &families, family_props);
  uint32_t family = families;
  for (uint32_t i = 0; i < families; ++i)
    if (family_props[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      if (family == families) family = i;
      else if (!family_props[family].timestampValidBits && family_props[i].timestampValidBits) family = i;
    }
  free(family_props);
  if (family == families) return bad(p, "%s has no compute queue", m->device_name);
  /* out-of-bounds buffer accesses of a kernel then stay inside its buffers (docs/security.md) */
  VkPhysicalDeviceFeatures supported;
  vkGetPhysicalDeviceFeatures(m->physical, &supported);
  m->robust = supported.robustBufferAccess == VK_TRUE;
  VkPhysicalDeviceFeatures features = {0};
  features.robustBufferAccess = supported.robustBufferAccess;
  feature_chain chain;
  if (feature_chain_for(p, m, api, &chain)) return -1;
  float priority = 1.0f;
  VkDeviceQueueCreateInfo queue_info = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  queue_info.queueFamilyIndex = family;
  queue_info.queueCount = 1;
  queue_info.pQueuePriorities = &priority;
  VkDeviceCreateInfo device_info = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  device_info.pNext = m->program.features ? &chain.storage : NULL;
  device_info.queueCreateInfoCount = 1;
  device_info.pQueueCreateInfos = &queue_info;
  device_info.pEnabledFeatures = &features;
  device_info.enabledExtensionCount = chain.extension_count;
  device_info.ppEnabledExtensionNames = chain.extensions;
  VK_TRY(vkCreateDevice(m->physical, &device_info, NULL, &m->device), "opening the device");
  vkGetDeviceQueue(m->device, family, 0, &m->queue);
  VkPhysicalDeviceMemoryProperties memory;
  vkGetPhysicalDeviceMemoryProperties(m->physical, &memory);
  m->memory_types = memory.memoryTypeCount;
  for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) m->memory_flags[i] = memory.memoryTypes[i].propertyFlags;
  VkCommandPoolCreateInfo pool_info = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pool_info.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool_info.queueFamilyIndex = family;
  VK_TRY(vkCreateCommandPool(m->device, &pool_info, NULL, &m->command_pool), "opening the device");
  VkFenceCreateInfo fence_info = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VK_TRY(vkCreateFence(m->device, &fence_info, NULL, &m->fence), "opening the device");
  return 0;
}

/* A buffer bound to its own allocation. */
static int make_buffer(problem_t *p, rt3d_vk_model *m, VkDeviceSize size, VkBufferUsageFlags usage,
                       VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred, VkBuffer *buffer,
                       VkDeviceMemory *memory, const char *stage) {
  VkBufferCreateInfo info = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = size;
  info.usage = usage;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VK_TRY(vkCreateBuffer(m->device, &info, NULL, buffer), stage);
  VkMemoryRequirements needs;
  vkGetBufferMemoryRequirements(m->device, *buffer, &needs);
  uint32_t kind = m->memory_types, fallback = m->memory_types;
  for (uint32_t i = 0; i < m->memory_types; ++i) {
    if (!(needs.memoryTypeBits >> i & 1) || (m->memory_flags[i] & required) != required) continue;
    if (fallback == m->memory_types) fallback = i;
    if ((m->memory_flags[i] & preferred) == preferred) {
      kind = i;
      break;
    }
  }
  if (kind == m->memory_types) kind = fallback;
  if (kind == m->memory_types) return bad(p, "%s has no suitable memory type for a buffer", m->device_name);
  VkMemoryAllocateInfo allocate = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  allocate.allocationSize = needs.size;
  allocate.memoryTypeIndex = kind;
  VK_TRY(vkAllocateMemory(m->device, &allocate, NULL, memory), stage);
  VK_TRY(vkBindBufferMemory(m->device, *buffer, *memory, 0), stage);
  return 0;
}

static void drop_buffer(rt3d_vk_model *m, VkBuffer *buffer, VkDeviceMemory *memory) {
  if (*buffer) vkDestroyBuffer(m->device, *buffer, NULL);
  if (*memory) vkFreeMemory(m->device, *memory, NULL);
  *buffer = VK_NULL_HANDLE, *memory = VK_NULL_HANDLE;
}

static uint64_t tensor_bytes(const int64_t *shape, int32_t rank) {
  uint64_t n = 4;
  for (int32_t i = 0; i < rank; ++i) n *= (uint64_t)shape[i];
  return n;
}

static int create_buffers(problem_t *p, rt3d_vk_model *m) {
  const program_t *program = &m->program;
  const char *stage = "allocating buffers";
  m->buffers = calloc(program->buffer_count + 1, sizeof *m->buffers);
  m->memories = calloc(program->buffer_count + 1, sizeof *m->memories);
  if (!m->buffers || !m->memories) return bad(p, "out of memory");
  VkBufferUsageFlags usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                             VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  for (size_t i = 0; i < program->buffer_count; ++i)
    if (make_buffer(p, m, program->buffers[i].bytes, usage, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                    &m->buffers[i], &m->memories[i], stage))
      return -1;
  VkMemoryPropertyFlags host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  m->input_bytes = (size_t)tensor_bytes(program->input_shape, program->input_rank);
  m->output_bytes = (size_t)tensor_bytes(program->output_shape, program->output_rank);
  if (make_buffer(p, m, m->input_bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, host, 0, &m->input_staging,
                  &m->input_memory, stage))
    return -1;
  VK_TRY(vkMapMemory(m->device, m->input_memory, 0, m->input_bytes, 0, &m->input_map), stage);
  if (make_buffer(p, m, m->output_bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT, host,
                  VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &m->output_staging, &m->output_memory, stage))
    return -1;
  VK_TRY(vkMapMemory(m->device, m->output_memory, 0, m->output_bytes, 0, &m->output_map), stage);
  return 0;
}

static int begin(problem_t *p, rt3d_vk_model *m, VkCommandBuffer *cmd, const char *stage) {
  VkCommandBufferAllocateInfo info = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  info.commandPool = m->command_pool;
  info.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  info.commandBufferCount = 1;
  VK_TRY(vkAllocateCommandBuffers(m->device, &info, cmd), stage);
  VkCommandBufferBeginInfo begin_info = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  VK_TRY(vkBeginCommandBuffer(*cmd, &begin_info), stage);
  return 0;
}

static int submit(problem_t *p, rt3d_vk_model *m, VkCommandBuffer cmd, const char *stage) {
  VkSubmitInfo info = {VK_STRUCTURE_TYPE_SUBMIT_INFO};
  info.commandBufferCount = 1;
  info.pCommandBuffers = &cmd;
  VK_TRY(vkQueueSubmit(m->queue, 1, &info, m->fence), stage);
  VK_TRY(vkWaitForFences(m->device, 1, &m->fence, VK_TRUE, UINT64_MAX), stage);
  VK_TRY(vkResetFences(m->device, 1, &m->fence), stage);
  return 0;
}

/* Fill the "weights" buffers from weights.bin and clear the "zero" ones, through a staging buffer of
 * at most RT3D_STAGING_BYTES, in as many submissions as that takes. */
static int upload(problem_t *p, rt3d_vk_model *m, const weights_t *weights) {
  const program_t *program = &m->program;
  const char *stage = "uploading the weights";
  uint64_t total = 0;
  int zeros = 0;
  for (size_t i = 0; i < program->buffer_count; ++i) {
    if (program->buffers[i].init == INIT_WEIGHTS) total += program->buffers[i].bytes;
    zeros |= program->buffers[i].init == INIT_ZERO;
  }
  if (!total && !zeros) return 0;
  uint64_t capacity = total < RT3D_STAGING_BYTES ? total : RT3D_STAGING_BYTES;
  if (!capacity) capacity = 4;
  VkBuffer staging = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  uint8_t *view = NULL;
  int status = -1;
  VkResult r;
  if (make_buffer(p, m, capacity, VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                  VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0, &staging,
                  &memory, stage))
    goto done;
  if ((r = vkMapMemory(m->device, memory, 0, capacity, 0, (void **)&view)) != VK_SUCCESS) {
    vulkan_fail(p, m, r, stage);
    goto done;
  }
  if (begin(p, m, &cmd, stage)) goto done;
  for (size_t i = 0; i < program->buffer_count; ++i)
    if (program->buffers[i].init == INIT_ZERO) vkCmdFillBuffer(cmd, m->buffers[i], 0, program->buffers[i].bytes, 0);
  uint64_t used = 0;
  for (size_t i = 0; i < program->buffer_count; ++i) {
    const buffer_spec *b = &program->buffers[i];
    if (b->init != INIT_WEIGHTS) continue;
    for (uint64_t done = 0; done < b->bytes;) {
      if (used == capacity) { /* flush: run what is recorded, then reuse the staging buffer */
        VkCommandBufferBeginInfo again = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        if ((r = vkEndCommandBuffer(cmd)) != VK_SUCCESS) {
          vulkan_fail(p, m, r, stage);
          goto done;
        }
        if (submit(p, m, cmd, stage)) goto done;
        vkResetCommandBuffer(cmd, 0);
        vkBeginCommandBuffer(cmd, &again);
        used = 0;
      }
      uint64_t n = b->bytes - done < capacity - used ? b->bytes - done : capacity - used;
      memcpy(view + used, weights->bytes + b->offset + done, (size_t)n);
      VkBufferCopy region = {used, done, n};
      vkCmdCopyBuffer(cmd, staging, m->buffers[i], 1, &region);
      used += n, done += n;
    }
  }
  /* the inference command buffer starts with a transfer->compute barrier, which also orders these
   * earlier-submitted transfers before the first dispatch */
  if ((r = vkEndCommandBuffer(cmd)) != VK_SUCCESS) {
    vulkan_fail(p, m, r, stage);
    goto done;
  }
  if (submit(p, m, cmd, stage)) goto done;
  status = 0;
done:
  if (cmd) vkFreeCommandBuffers(m->device, m->command_pool, 1, &cmd);
  if (view) vkUnmapMemory(m->device, memory);
  drop_buffer(m, &staging, &memory);
  return status;
}

static int create_pipelines(problem_t *p, rt3d_vk_model *m) {
  program_t *program = &m->program;
  const char *stage = "creating the pipelines";
  uint64_t descriptors = 0;
  for (size_t k = 0; k < program->kernel_count; ++k) {
    kernel_spec *kernel = &program->kernels[k];
    VkShaderModuleCreateInfo module_info = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    module_info.codeSize = kernel->code_size;
    module_info.pCode = (const uint32_t *)kernel->code;
    VK_TRY(vkCreateShaderModule(m->device, &module_info, NULL, &kernel->shader), stage);
    VkDescriptorSetLayoutBinding bindings[MAX_BINDINGS];
    for (uint32_t j = 0; j < kernel->bindings; ++j)
      bindings[j] = (VkDescriptorSetLayoutBinding){j, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                                   VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo set_info = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    set_info.bindingCount = kernel->bindings;
    set_info.pBindings = bindings;
    VK_TRY(vkCreateDescriptorSetLayout(m->device, &set_info, NULL, &kernel->set_layout), stage);
    VkPipelineLayoutCreateInfo layout_info = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    layout_info.setLayoutCount = 1;
    layout_info.pSetLayouts = &kernel->set_layout;
    VK_TRY(vkCreatePipelineLayout(m->device, &layout_info, NULL, &kernel->layout), stage);
    VkComputePipelineCreateInfo pipeline_info = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    pipeline_info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    pipeline_info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    pipeline_info.stage.module = kernel->shader;
    pipeline_info.stage.pName = kernel->entry;
    pipeline_info.layout = kernel->layout;
    VK_TRY(vkCreateComputePipelines(m->device, VK_NULL_HANDLE, 1, &pipeline_info, NULL, &kernel->pipeline), stage);
  }
  for (size_t d = 0; d < program->dispatch_count; ++d) descriptors += program->dispatches[d].count;
  VkDescriptorPoolSize pool_size = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, (uint32_t)descriptors};
  VkDescriptorPoolCreateInfo pool_info = {VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  pool_info.maxSets = (uint32_t)program->dispatch_count;
  pool_info.poolSizeCount = 1;
  pool_info.pPoolSizes = &pool_size;
  VK_TRY(vkCreateDescriptorPool(m->device, &pool_info, NULL, &m->descriptor_pool), stage);
  m->sets = calloc(program->dispatch_count, sizeof *m->sets);
  if (!m->sets) return bad(p, "out of memory");
  for (size_t d = 0; d < program->dispatch_count; ++d) {
    const dispatch_spec *dispatch = &program->dispatches[d];
    VkDescriptorSetAllocateInfo allocate = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    allocate.descriptorPool = m->descriptor_pool;
    allocate.descriptorSetCount = 1;
    allocate.pSetLayouts = &program->kernels[dispatch->kernel].set_layout;
    VK_TRY(vkAllocateDescriptorSets(m->device, &allocate, &m->sets[d]), stage);
    for (uint32_t j = 0; j < dispatch->count; ++j) {
      uint32_t b = dispatch->buffers[j];
      VkDescriptorBufferInfo buffer_info = {m->buffers[b], 0, program->buffers[b].bytes};
      VkWriteDescriptorSet write = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      write.dstSet = m->sets[d];
      write.dstBinding = j;
      write.descriptorCount = 1;
      write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      write.pBufferInfo = &buffer_info;
      vkUpdateDescriptorSets(m->device, 1, &write, 0, NULL);
    }
  }
  return 0;
}

static void barrier(VkCommandBuffer cmd, VkPipelineStageFlags from, VkPipelineStageFlags to, VkAccessFlags src,
                    VkAccessFlags dst) {
  VkMemoryBarrier b = {VK_STRUCTURE_TYPE_MEMORY_BARRIER, NULL, src, dst};
  vkCmdPipelineBarrier(cmd, from, to, 0, 1, &b, 0, NULL, 0, NULL);
}

/* The whole inference in one reusable command buffer: input copy, the dispatches with a barrier
 * between consecutive ones, output copy. */
static int record(problem_t *p, rt3d_vk_model *m) {
  const program_t *program = &m->program;
  const char *stage = "recording the command buffer";
  VkCommandBuffer cmd;
  if (begin(p, m, &cmd, stage)) return -1;
  m->command = cmd;
  VkPipelineStageFlags compute = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, transfer = VK_PIPELINE_STAGE_TRANSFER_BIT;
  VkAccessFlags shader_rw = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  VkBufferCopy copy_in = {0, 0, m->input_bytes};
  vkCmdCopyBuffer(cmd, m->input_staging, m->buffers[program->input_buffer], 1, &copy_in);
  barrier(cmd, transfer, compute, VK_ACCESS_TRANSFER_WRITE_BIT, shader_rw);
  for (size_t d = 0; d < program->dispatch_count; ++d) {
    const dispatch_spec *dispatch = &program->dispatches[d];
    const kernel_spec *kernel = &program->kernels[dispatch->kernel];
    if (d) barrier(cmd, compute, compute, VK_ACCESS_SHADER_WRITE_BIT, shader_rw);
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, kernel->pipeline);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, kernel->layout, 0, 1, &m->sets[d], 0, NULL);
    vkCmdDispatch(cmd, dispatch->groups[0], dispatch->groups[1], dispatch->groups[2]);
  }
  barrier(cmd, compute, transfer, VK_ACCESS_SHADER_WRITE_BIT, VK_ACCESS_TRANSFER_READ_BIT);
  VkBufferCopy copy_out = {0, 0, m->output_bytes};
  vkCmdCopyBuffer(cmd, m->buffers[program->output_buffer], m->output_staging, 1, &copy_out);
  barrier(cmd, transfer, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_TRANSFER_WRITE_BIT, VK_ACCESS_HOST_READ_BIT);
  VK_TRY(vkEndCommandBuffer(cmd), stage);
  return 0;
}

/* ------------------------------------------------------------------------ the API */

unsigned rt3d_vk_api_version(void) { return RT3D_VK_API_VERSION; }

void rt3d_vk_free(rt3d_vk_model *m) {
  if (!m) return;
  if (m->device) {
    vkDeviceWaitIdle(m->device);
    for (size_t k = 0; k < m->program.kernel_count; ++k) {
      kernel_spec *kernel = &m->program.kernels[k];
      if (kernel->pipeline) vkDestroyPipeline(m->device, kernel->pipeline, NULL);
      if (kernel->layout) vkDestroyPipelineLayout(m->device, kernel->layout, NULL);
      if (kernel->set_layout) vkDestroyDescriptorSetLayout(m->device, kernel->set_layout, NULL);
      if (kernel->shader) vkDestroyShaderModule(m->device, kernel->shader, NULL);
    }
    if (m->descriptor_pool) vkDestroyDescriptorPool(m->device, m->descriptor_pool, NULL);
    if (m->command_pool) vkDestroyCommandPool(m->device, m->command_pool, NULL);
    if (m->fence) vkDestroyFence(m->device, m->fence, NULL);
    if (m->input_map) vkUnmapMemory(m->device, m->input_memory);
    if (m->output_map) vkUnmapMemory(m->device, m->output_memory);
    drop_buffer(m, &m->input_staging, &m->input_memory);
    drop_buffer(m, &m->output_staging, &m->output_memory);
    for (size_t i = 0; m->buffers && i < m->program.buffer_count; ++i)
      drop_buffer(m, &m->buffers[i], &m->memories[i]);
    vkDestroyDevice(m->device, NULL);
  }
  if (m->instance) vkDestroyInstance(m->instance, NULL);
  free(m->buffers), free(m->memories), free(m->sets);
  free_program(&m->program);
  pthread_mutex_destroy(&m->lock);
  free(m->path);
  free(m);
}

rt3d_vk_model *rt3d_vk_load(const char *path, const char *device, char *error, size_t error_size) {
  problem_t p = {{0}};
  struct stat st;
  if (!path || stat(path, &st)) {
    bad(&p, "artifact '%s' does not exist", path ? path : "(null)");
    put_error(error, error_size, p.message);
    return NULL;
  }
  rt3d_vk_model *m = calloc(1, sizeof *m);
  if (!m || !(m->path = strdup(path))) {
    free(m);
    put_error(error, error_size, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&m->lock, NULL);
  archive_t a = {unzOpen64(path), path, &p, 0};
  weights_t weights = {0};
  int status = -1;
  if (!a.zip) {
    snprintf(error ? error : p.message, error ? error_size : sizeof p.message,
             "cannot read '%s' as a SPIR-V artifact (a ZIP archive): it is not a ZIP archive, or it is truncated",
             path);
    rt3d_vk_free(m);
    return NULL;
  }
  status = read_artifact(&a, &m->program, &weights);
  unzClose(a.zip);
  if (status) {
    char line[MESSAGE_BYTES + 256];
    if (a.zip_error)
      snprintf(line, sizeof line, "cannot read '%s' as a SPIR-V artifact (a ZIP archive): %s", path, p.message);
    else
      snprintf(line, sizeof line, "'%s' is not a valid SPIR-V artifact: %s", path, p.message);
    put_error(error, error_size, line);
    free_weights(&weights);
    rt3d_vk_free(m);
    return NULL;
  }
  status = open_device(&p, m, device) || create_buffers(&p, m) || upload(&p, m, &weights) ||
           create_pipelines(&p, m) || record(&p, m);
  free_weights(&weights);
  if (status) {
    put_error(error, error_size, p.message);
    rt3d_vk_free(m);
    return NULL;
  }
  return m;
}

int32_t rt3d_vk_input_rank(const rt3d_vk_model *m) { return m->program.input_rank; }
const int64_t *rt3d_vk_input_shape(const rt3d_vk_model *m) { return m->program.input_shape; }
int32_t rt3d_vk_output_rank(const rt3d_vk_model *m) { return m->program.output_rank; }
const int64_t *rt3d_vk_output_shape(const rt3d_vk_model *m) { return m->program.output_shape; }
const char *rt3d_vk_device_name(const rt3d_vk_model *m) { return m->device_name; }
const char *rt3d_vk_precision(const rt3d_vk_model *m) { return m->program.precision; }
int rt3d_vk_robust_buffer_access(const rt3d_vk_model *m) { return m->robust; }

int rt3d_vk_run(rt3d_vk_model *m, const float *input, float *output, char *error, size_t error_size) {
  problem_t problem = {{0}}, *p = &problem;
  if (!m || !input || !output) {
    put_error(error, error_size, "rt3d_vk_run needs a model, an input and an output");
    return -1;
  }
  pthread_mutex_lock(&m->lock);
  memcpy(m->input_map, input, m->input_bytes);
  int status = submit(p, m, m->command, "running the model");
  if (!status) memcpy(output, m->output_map, m->output_bytes);
  pthread_mutex_unlock(&m->lock);
  if (status) put_error(error, error_size, problem.message);
  return status;
}

/* A qemu TCG plugin that counts the AArch64 instructions a program executes.
 *
 * Debian's qemu-user 7.2 loads plugins (-plugin) but ships none and no
 * qemu-plugin.h, so the few entry points used here are declared below from
 * the documented plugin API (version 1). Built (with the host C compiler,
 * cached) and run by rt3d_mlir/runtime/emulated.py:
 *
 *   cc -shared -fPIC -O2 -o qemu_insn_count.so rt3d_mlir/runtime/qemu_insn_count.c
 *   qemu-aarch64 -plugin ./qemu_insn_count.so,out=counts.txt PROGRAM ...
 *
 * At exit it writes "instructions N\nfmla N\nfmla_h N\nsdot N\nmemory N\n" to the file
 * given as out= (stderr otherwise), then one line "mark I F H S M" per clock_gettime system call
 * the guest made: the five counts at that call. A profiled artifact reads the clock before and
 * after each kernel (Debian's qemu 7.2 gives an AArch64 guest no vDSO, so every read is a system
 * call), so consecutive marks delimit each kernel's instructions.
 * The counters:
 *   instructions: every executed guest instruction;
 *   fmla:         NEON single-precision FMLA, vector or by-element form
 *                 (4S or 2S arrangement);
 *   fmla_h:       NEON half-precision FMLA (+fullfp16), vector or by-element
 *                 form (8H or 4H arrangement);
 *   sdot:         NEON signed int8 dot product (+dotprod), vector or
 *                 by-element form (16 products in the 4S arrangement);
 *   memory:       loads and stores (the load/store encoding group).
 * Counting is inline (one add per executed translation block and class), so
 * the guest runs at almost full emulation speed. The counters are shared by
 * all guest threads without atomics: run the guest on one thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t index);
extern const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
extern size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                                     void *pointer, uint64_t immediate);
extern void qemu_plugin_outs(const char *text);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t instructions, fmla, fmla_h, sdot, memory;
static char out_path[4096];

typedef void (*syscall_cb)(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                           uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8);
extern void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, syscall_cb cb);

#define AARCH64_CLOCK_GETTIME 113
#define MAX_MARKS (1 << 20)
static uint64_t (*marks)[5];
static size_t n_marks, marks_room;

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
  (void)id, (void)vcpu, (void)a1, (void)a2, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
  if (num != AARCH64_CLOCK_GETTIME || n_marks >= MAX_MARKS) return;
  if (n_marks == marks_room) {
    size_t room = marks_room ? 2 * marks_room : 1024;
    void *grown = realloc(marks, room * sizeof *marks);
    if (!grown) return;
    marks = grown;
    marks_room = room;
  }
  uint64_t *mark = marks[n_marks++];
  mark[0] = instructions, mark[1] = fmla, mark[2] = fmla_h, mark[3] = sdot, mark[4] = memory;
}

/* FMLA (vector), single precision: 0 Q 0 01110 0 0 1 Rm 110011 Rn Rd. */
static int is_fmla_vector(uint32_t word) { return (word & 0xBFE0FC00u) == 0x0E20CC00u; }

/* FMLA (by element), single precision: 0 Q 0 01111 1 0 L M Rm 0001 H 0 Rn Rd. */
static int is_fmla_element(uint32_t word) { return (word & 0xBFC0F400u) == 0x0F801000u; }

/* FMLA (vector), half precision: 0 Q 0 01110 0 1 0 Rm 000011 Rn Rd. */
static int is_fmla_h_vector(uint32_t word) { return (word & 0xBFE0FC00u) == 0x0E400C00u; }

/* FMLA (by element), half precision: 0 Q 0 01111 0 0 L M Rm 0001 H 0 Rn Rd. */
static int is_fmla_h_element(uint32_t word) { return (word & 0xBFC0F400u) == 0x0F001000u; }

/* SDOT (vector): 0 Q 0 01110 10 0 Rm 100101 Rn Rd. */
static int is_sdot_vector(uint32_t word) { return (word & 0xBFE0FC00u) == 0x0E809400u; }

/* SDOT (by element): 0 Q 0 01111 10 L M Rm 1110 H 0 Rn Rd. */
static int is_sdot_element(uint32_t word) { return (word & 0xBFC0F400u) == 0x0F80E000u; }

/* Loads and stores: op0 bits 28..25 match x1x0. */
static int is_memory(uint32_t word) { return ((word >> 25) & 0x5u) == 0x4u; }

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t count = qemu_plugin_tb_n_insns(tb);
  uint64_t fmla_here = 0, fmla_h_here = 0, sdot_here = 0, memory_here = 0;
  for (size_t i = 0; i < count; ++i) {
    const struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    if (qemu_plugin_insn_size(insn) != 4) continue;
    uint32_t word;
    memcpy(&word, qemu_plugin_insn_data(insn), sizeof word);
    fmla_here += is_fmla_vector(word) || is_fmla_element(word);
    fmla_h_here += is_fmla_h_vector(word) || is_fmla_h_element(word);
    sdot_here += is_sdot_vector(word) || is_sdot_element(word);
    memory_here += is_memory(word);
  }
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &instructions, count);
  if (fmla_here)
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &fmla, fmla_here);
  if (fmla_h_here)
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &fmla_h, fmla_h_here);
  if (sdot_here)
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &sdot, sdot_here);
  if (memory_here)
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &memory, memory_here);
}

static void write_counts(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  char text[256];
  snprintf(text, sizeof text, "instructions %llu\nfmla %llu\nfmla_h %llu\nsdot %llu\nmemory %llu\n",
           (unsigned long long)instructions, (unsigned long long)fmla, (unsigned long long)fmla_h,
           (unsigned long long)sdot, (unsigned long long)memory);
  FILE *file = out_path[0] ? fopen(out_path, "w") : NULL;
  if (file) {
    fputs(text, file);
    for (size_t i = 0; i < n_marks; ++i)
      fprintf(file, "mark %llu %llu %llu %llu %llu\n", (unsigned long long)marks[i][0],
              (unsigned long long)marks[i][1], (unsigned long long)marks[i][2],
              (unsigned long long)marks[i][3], (unsigned long long)marks[i][4]);
    fclose(file);
  } else {
    qemu_plugin_outs(text);
  }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "out=", 4) == 0) {
      snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
    } else {
      fprintf(stderr, "qemu_insn_count: unknown option '%s' (out=FILE)\n", argv[i]);
      return -1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, write_counts, NULL);
  qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
  return 0;
}

/* AMX tile-product throughput on one core: 4 accumulator tiles, bf16 (tdpbf16ps) with K = 32 or 16
 * channels per product (A rows of 64 or 32 bytes) and int8 (tdpbusd) with K = 64, 32 or 16 channels
 * (A rows of 64, 32 or 16 bytes), with the operands in tiles or loaded per product group: one weight
 * tile (B) and four input tiles (A) per four products (one block of filters over four position tiles,
 * the kernels' register tile), or two of each (two blocks over two position tiles).
 *
 *   clang-22 -O2 -march=native bench/amx_peak.c -o /tmp/amx_peak && /tmp/amx_peak
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
typedef struct { uint8_t palette, start; uint8_t pad[14]; uint16_t colsb[16]; uint8_t rows[16]; } cfg_t;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static uint16_t A[64 * 1024] __attribute__((aligned(64))), B[64 * 1024] __attribute__((aligned(64)));
static float C[4][256] __attribute__((aligned(64)));
static void config(int kbytes) {
  cfg_t c; memset(&c, 0, sizeof c); c.palette = 1;
  for (int t = 0; t < 4; t++) { c.rows[t] = 16; c.colsb[t] = 64; }       /* C: 16 x 16 f32 */
  c.rows[4] = 16; c.colsb[4] = kbytes; c.rows[5] = 16; c.colsb[5] = kbytes;  /* A */
  c.rows[6] = kbytes / 4; c.colsb[6] = 64; c.rows[7] = kbytes / 4; c.colsb[7] = 64;  /* B */
  _tile_loadconfig(&c);
}
static void run(int kbytes, int loads, int int8) {
  const long n = 20000000;
  config(kbytes);
  _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
  _tile_loadd(4, A, 64); _tile_loadd(5, A, 64); _tile_loadd(6, B, 64);
  double t0 = now();
  for (long i = 0; loads == 2 && i < n; i++) {  /* 2 B x 2 A: each loaded tile feeds two products */
    _tile_loadd(6, B + (i & 63) * 256, 64); _tile_loadd(7, B + (i & 63) * 256 + 512, 64);
    _tile_loadd(4, A + (i & 63) * 256, kbytes);
    if (int8) { _tile_dpbusd(0, 4, 6); _tile_dpbusd(1, 4, 7); } else { _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); }
    _tile_loadd(5, A + (i & 63) * 256 + 512, kbytes);
    if (int8) { _tile_dpbusd(2, 5, 6); _tile_dpbusd(3, 5, 7); } else { _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7); }
  }
  for (long i = 0; loads < 2 && i < n; i++) {
    if (loads) { _tile_loadd(6, B + (i & 63) * 256, 64); _tile_loadd(4, A + (i & 63) * 256, kbytes); }
    if (int8) _tile_dpbusd(0, 4, 6); else _tile_dpbf16ps(0, 4, 6);
    if (loads) _tile_loadd(5, A + (i & 63) * 256 + 512, kbytes);
    if (int8) _tile_dpbusd(1, 5, 6); else _tile_dpbf16ps(1, 5, 6);
    if (loads) _tile_loadd(4, A + (i & 63) * 256 + 1024, kbytes);
    if (int8) _tile_dpbusd(2, 4, 6); else _tile_dpbf16ps(2, 4, 6);
    if (loads) _tile_loadd(5, A + (i & 63) * 256 + 1536, kbytes);
    if (int8) _tile_dpbusd(3, 5, 6); else _tile_dpbf16ps(3, 5, 6);
  }
  double dt = now() - t0;
  _tile_stored(0, C[0], 64);
  int k = int8 ? kbytes : kbytes / 2;
  double flops = 4.0 * n * 16 * 16 * k * 2;
  printf("%s K=%2d %s: %.0f GOP/s (%.1f ns per product)\n",
         int8 ? "int8" : "bf16", k,
         loads == 2 ? "2 B + 2 A loads per 4 products" : loads ? "1 B + 4 A loads per 4 products"
                                                             : "operands in tiles             ",
         flops / dt / 1e9, dt / (4.0 * n) * 1e9);
  _tile_release();
}
int main(void) {
  if (syscall(SYS_arch_prctl, 0x1023, 18)) { puts("no AMX permission"); return 1; }
  for (int k = 64; k >= 32; k /= 2) { run(k, 0, 0); run(k, 1, 0); run(k, 2, 0); }
  for (int k = 64; k >= 16; k /= 2) { run(k, 0, 1); run(k, 1, 1); run(k, 2, 1); }
  return 0;
}

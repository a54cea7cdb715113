/* The FP32 FMA peak of this machine's AVX-512 cores: 24 independent accumulator chains of
 * _mm512_fmadd_ps per thread, on 1 and 2 threads (the ceiling the conv kernels are measured against);
 * where the CPU has AVX-512 BF16, the same for _mm512_dpbf16_ps (vdpbf16ps: 32 multiply-adds each),
 * and where it has AVX-512 VNNI, _mm512_dpbusd_epi32 (vpdpbusd: 64 u8 x s8 multiply-adds into i32;
 * its "GFLOP/s" count 2 operations per multiply-add, as for the float instructions).
 *
 *   clang-22 -O2 -march=native -pthread bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#define N 200000000L
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void *run_fma(void *arg){
  __m512 a[24]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-7f);
  for(int i=0;i<24;i++) a[i]=_mm512_set1_ps((float)i);
  for(long n=0;n<N/24;n++){
    #pragma GCC unroll 24
    for(int i=0;i<24;i++) a[i]=_mm512_fmadd_ps(a[i],b,c);
  }
  float s=0; for(int i=0;i<24;i++) s+=_mm512_reduce_add_ps(a[i]);
  *(float*)arg=s; return 0;
}
#ifdef __AVX512BF16__
static void *run_dot(void *arg){
  __m512 a[24]; __m512bh b=(__m512bh)_mm512_set1_epi16(0x3f80), c=(__m512bh)_mm512_set1_epi16(0x3380);
  for(int i=0;i<24;i++) a[i]=_mm512_set1_ps((float)i);
  for(long n=0;n<N/24;n++){
    #pragma GCC unroll 24
    for(int i=0;i<24;i++) a[i]=_mm512_dpbf16_ps(a[i],b,c);
  }
  float s=0; for(int i=0;i<24;i++) s+=_mm512_reduce_add_ps(a[i]);
  *(float*)arg=s; return 0;
}
#endif
#ifdef __AVX512VNNI__
static void *run_vnni(void *arg){
  __m512i a[24]; __m512i b=_mm512_set1_epi8(1), c=_mm512_set1_epi8(-1);
  for(int i=0;i<24;i++) a[i]=_mm512_set1_epi32(i);
  for(long n=0;n<N/24;n++){
    #pragma GCC unroll 24
    for(int i=0;i<24;i++) a[i]=_mm512_dpbusd_epi32(a[i],b,c);
  }
  int s=0; for(int i=0;i<24;i++) s+=_mm512_reduce_add_epi32(a[i]);
  *(float*)arg=(float)s; return 0;
}
#endif
static void measure(const char *name, void *(*run)(void *), int macs){
  for(int th=1;th<=2;th++){
    pthread_t t[2]; float r[2]; double t0=now();
    for(int i=0;i<th;i++) pthread_create(&t[i],0,run,&r[i]);
    for(int i=0;i<th;i++) pthread_join(t[i],0);
    double dt=now()-t0; double flops=(double)(N/24)*24*macs*2*th;
    printf("%s, %d threads: %.1f GFLOP/s total, %.1f per core (%g)\n",name,th,flops/dt/1e9,flops/dt/1e9/th,r[0]);
  }
}
int main(){
  measure("f32 FMA", run_fma, 16);
#ifdef __AVX512BF16__
  measure("bf16 vdpbf16ps", run_dot, 32);
#endif
#ifdef __AVX512VNNI__
  measure("int8 vpdpbusd", run_vnni, 64);
#endif
}

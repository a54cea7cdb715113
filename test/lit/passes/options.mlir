// Pass options are checked when the pipeline is parsed, whether or not any op
// would match (this module has none).
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-recognize-kgs{group-shape=0x4})' 2>&1 | FileCheck %s --check-prefix=GROUP
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-recognize-kgs{candidates=4x4,big})' 2>&1 | FileCheck %s --check-prefix=CANDIDATES
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-recognize-kgs{widen-to=16})' 2>&1 | FileCheck %s --check-prefix=WIDEN
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{target=tpu})' 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{block-size=-4})' 2>&1 | FileCheck %s --check-prefix=BLOCK
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{tile-cols=99999999999})' 2>&1 | FileCheck %s --check-prefix=HUGE
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-matmul{unroll=0})' 2>&1 | FileCheck %s --check-prefix=UNROLL
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-elementwise{chunk=nan})' 2>&1 | FileCheck %s --check-prefix=NAN
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-pool{vector-width=-1})' 2>&1 | FileCheck %s --check-prefix=WIDTH
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-externalize-weights{min-elements=-1})' 2>&1 | FileCheck %s --check-prefix=EXTERN

// GROUP: rt3d-opt: error: pass 'rt3d-recognize-kgs': group shape entries must be between 1 and 65536, got '0x4'
// CANDIDATES: rt3d-opt: error: pass 'rt3d-recognize-kgs': group shape must look like 8x4, got 'big'
// WIDEN: rt3d-opt: error: pass 'rt3d-recognize-kgs': group shape must look like 8x4, got '16'
// TARGET: rt3d-opt: error: pass 'rt3d-pack-kernel-groups': target must be one of aarch64, host, spirv, got 'tpu'
// BLOCK: rt3d-opt: error: pass 'rt3d-pack-kernel-groups': block-size must be between 0 and 1073741824 (0 chooses), got -4
// HUGE: rt3d-opt: error: pass 'rt3d-reorder-loops': tile-cols must be between 0 and 1073741824 (0 chooses), got 99999999999
// UNROLL: rt3d-opt: error: pass 'rt3d-vectorize-matmul': unroll must be between 1 and 1073741824, got 0
// NAN: rt3d-opt: error: pass 'rt3d-vectorize-elementwise': option 'chunk' expects int, got 'nan'
// WIDTH: rt3d-opt: error: pass 'rt3d-vectorize-pool': vector-width must be between 0 and 1073741824 (0: the target's), got -1
// EXTERN: rt3d-opt: error: pass 'rt3d-externalize-weights': min-elements must be between 0 and 1073741824, got -1
func.func @nothing(%a: tensor<4xf32>) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}

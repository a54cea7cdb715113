// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-pool{vector-width=4}, canonicalize, cse)' | FileCheck %s

// torch-mlir's max_pool3d (kernel 1x2x2, stride 1x2x2): one task per
// (channel, output depth); each output row of 6 columns is one full and one
// masked 4-lane vector; each of the 4 window positions (W stride 2) reads
// the 2 x 4 - 1 = 7 inputs of a full vector with one load and one masked
// load of 3, keeps their even lanes (one shuffle, no gather) and folds them
// with maximumf into an accumulator that starts at the fill value (-inf);
// the 2 outputs of the tail need 3 inputs: one masked load.
// CHECK-LABEL: func.func @pool
// CHECK-NOT: linalg.generic
// CHECK: call @rt3d_pool_dispatch_0(%{{.*}}, %{{.*}}) : (memref<4608xf32>, memref<1152xf32>) -> ()
// CHECK-LABEL: func.func @two_pools
// CHECK: call @rt3d_pool_dispatch_1(
// CHECK: call @rt3d_pool_dispatch_2(
// CHECK-LABEL: func.func @rt3d_pool_kernel_0
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 32 : i64}
// CHECK-DAG: %[[NEGINF:.*]] = arith.constant dense<0xFF800000> : vector<4xf32>
// CHECK-NOT: vector.gather
// CHECK: scf.for
// CHECK: scf.for
// CHECK: %[[A:.*]] = vector.load
// CHECK: %[[M3:.*]] = vector.constant_mask [3] : vector<4xi1>
// CHECK: %[[B:.*]] = vector.maskedload %{{.*}}[%{{.*}}], %[[M3]], %[[NEGINF]]
// CHECK: %[[E:.*]] = vector.shuffle %[[A]], %[[B]] [0, 2, 4, 6] : vector<4xf32>, vector<4xf32>
// CHECK-COUNT-3: vector.shuffle
// CHECK: vector.store
// CHECK: vector.constant_mask [2] : vector<4xi1>
// CHECK: %[[T:.*]] = vector.maskedload %{{.*}}[%{{.*}}], %[[M3]], %[[NEGINF]]
// CHECK: vector.shuffle %[[T]], %[[T]] [0, 2, 4, 6]
// CHECK-COUNT-3: vector.shuffle
// CHECK-NOT: vector.gather
// CHECK: vector.maskedstore
// CHECK-NOT: rt3d_pool_kernel_1
// CHECK: func.func private @rt3d_pool_dispatch_1({{.*}}rt3d.kernel = "rt3d_pool_kernel_0"
// CHECK: func.func private @rt3d_pool_dispatch_2({{.*}}rt3d.kernel = "rt3d_pool_kernel_0"
#in = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 + d5, d3 * 2 + d6, d4 * 2 + d7)>
#win = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>
#out = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
func.func @pool(%arg0: tensor<1x4x8x12x12xf32>) -> tensor<1x4x8x6x6xf32> {
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<1x4x8x6x6xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x4x8x6x6xf32>) -> tensor<1x4x8x6x6xf32>
  %2 = tensor.empty() : tensor<1x2x2xf32>
  %3 = linalg.generic {indexing_maps = [#in, #win, #out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0, %2 : tensor<1x4x8x12x12xf32>, tensor<1x2x2xf32>) outs(%1 : tensor<1x4x8x6x6xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x4x8x6x6xf32>
  return %3 : tensor<1x4x8x6x6xf32>
}

// Two pools of one shape share the kernel of @pool (reused by the digest of its text);
// each call has a dispatch of its own, so profiles stay per layer.
func.func @two_pools(%arg0: tensor<1x4x8x12x12xf32>, %arg1: tensor<1x4x8x12x12xf32>) -> (tensor<1x4x8x6x6xf32>, tensor<1x4x8x6x6xf32>) {
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<1x4x8x6x6xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x4x8x6x6xf32>) -> tensor<1x4x8x6x6xf32>
  %2 = tensor.empty() : tensor<1x2x2xf32>
  %3 = linalg.generic {indexing_maps = [#in, #win, #out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0, %2 : tensor<1x4x8x12x12xf32>, tensor<1x2x2xf32>) outs(%1 : tensor<1x4x8x6x6xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x4x8x6x6xf32>
  %4 = linalg.generic {indexing_maps = [#in, #win, #out], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg1, %2 : tensor<1x4x8x12x12xf32>, tensor<1x2x2xf32>) outs(%1 : tensor<1x4x8x6x6xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x4x8x6x6xf32>
  return %3, %4 : tensor<1x4x8x6x6xf32>, tensor<1x4x8x6x6xf32>
}

// -----

// The channel-blocked pool (rt3d-propagate-layout): 1x4x1x4x18x4 input,
// window and stride 1x2x2, 9 output columns: one task per (channel block,
// output depth); a vector is the 4 channels of one position, so each window
// position is one aligned load (no gathers, no masks); the row is two steps of
// 4 columns (4 independent max chains of 4 loads) and one column left over.
// CHECK-LABEL: func.func @blocked_pool
// CHECK: call @rt3d_pool_dispatch_0(%{{.*}}, %{{.*}}) : (memref<1152xf32>, memref<288xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_pool_kernel_0
// CHECK-SAME: rt3d.parallel_tasks = 4 : i64
// CHECK-NOT: vector.gather
// CHECK-NOT: vector.mask
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-16: vector.load %{{.*}} : memref<1152xf32>, vector<4xf32>
// CHECK-COUNT-4: vector.store %{{.*}} : memref<288xf32>, vector<4xf32>
// CHECK: }
// CHECK-COUNT-4: vector.load %{{.*}} : memref<1152xf32>, vector<4xf32>
// CHECK: vector.store %{{.*}} : memref<288xf32>, vector<4xf32>
// CHECK: return
#bin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7, d8) -> (d0, d1, d2 + d6, d3 * 2 + d7, d4 * 2 + d8, d5)>
#bwin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7, d8) -> (d6, d7, d8)>
#bout = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7, d8) -> (d0, d1, d2, d3, d4, d5)>
func.func @blocked_pool(%arg0: tensor<1x4x1x4x18x4xf32>) -> tensor<1x4x1x2x9x4xf32> {
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<1x4x1x2x9x4xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x4x1x2x9x4xf32>) -> tensor<1x4x1x2x9x4xf32>
  %2 = tensor.empty() : tensor<1x2x2xf32>
  %3 = linalg.generic {indexing_maps = [#bin, #bwin, #bout], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0, %2 : tensor<1x4x1x4x18x4xf32>, tensor<1x2x2xf32>) outs(%1 : tensor<1x4x1x2x9x4xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x4x1x2x9x4xf32>
  return %3 : tensor<1x4x1x2x9x4xf32>
}

// -----

// A pool whose only user is a packed conv padding its input by 1 writes
// into that conv's padded input (1x4x1x4x4 -> 1x4x3x4x4, fuse-pads): the
// fill-only pad kernel zeroes the padding first, the pool stores at the
// padded strides (rows of 4, planes of 16, starting at plane 1 row 1
// column 1: offset 21), and the conv reads the buffer with zero padding.
// CHECK-LABEL: func.func @fused
// CHECK: %[[BUF:.*]] = memref.alloc() {{.*}} : memref<192xf32>
// CHECK: call @rt3d_pad_dispatch_0(%[[BUF]]) : (memref<192xf32>) -> ()
// CHECK: call @rt3d_pool_dispatch_0(%{{.*}}, %[[BUF]]) : (memref<64xf32>, memref<192xf32>) -> ()
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>
// CHECK-SAME: (tensor<1x4x3x4x4xf32>,
// CHECK-LABEL: func.func @rt3d_pad_kernel_0
// CHECK-LABEL: func.func @rt3d_pool_kernel_0
// CHECK-SAME: %{{.*}}: memref<64xf32>, %{{.*}}: memref<192xf32>
// CHECK: arith.constant 21 : index
#fin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 + d5, d3 * 2 + d6, d4 * 2 + d7)>
#fwin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>
#fout = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
func.func @fused(%arg0: tensor<1x4x1x4x4xf32>) -> tensor<1x4x3x4x4xf32> {
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<1x4x1x2x2xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x2x2xf32>
  %2 = tensor.empty() : tensor<1x2x2xf32>
  %p = linalg.generic {indexing_maps = [#fin, #fwin, #fout], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0, %2 : tensor<1x4x1x4x4xf32>, tensor<1x2x2xf32>) outs(%1 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x4x1x2x2xf32>
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 48, 96, 144]> : tensor<4xi32>
  %starts = arith.constant dense<[0, 4]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %z = "rt3d.packed_conv3d"(%p, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 1, 1, 1>, padding_low = array<i64: 1, 1, 1>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<4xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x3x4x4xf32>
  return %z : tensor<1x4x3x4x4xf32>
}

// -----

// W stride 3 (window 1x1x3): each window position is a strided gather of 4
// inputs 3 apart.
// CHECK-LABEL: func.func @rt3d_pool_kernel_0
// CHECK: %[[STRIDE:.*]] = arith.constant dense<[0, 3, 6, 9]> : vector<4xi32>
// CHECK-COUNT-3: vector.gather %{{.*}}[%{{.*}}] [%[[STRIDE]]]
// CHECK: vector.store
#sin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 + d5, d3 + d6, d4 * 3 + d7)>
#swin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>
#sout = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
func.func @stride3(%arg0: tensor<1x1x1x2x12xf32>) -> tensor<1x1x1x2x4xf32> {
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<1x1x1x2x4xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x1x1x2x4xf32>) -> tensor<1x1x1x2x4xf32>
  %2 = tensor.empty() : tensor<1x1x3xf32>
  %3 = linalg.generic {indexing_maps = [#sin, #swin, #sout], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0, %2 : tensor<1x1x1x2x12xf32>, tensor<1x1x3xf32>) outs(%1 : tensor<1x1x1x2x4xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x1x1x2x4xf32>
  return %3 : tensor<1x1x1x2x4xf32>
}

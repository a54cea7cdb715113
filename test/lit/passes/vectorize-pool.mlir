// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-pool{vector-width=4}, canonicalize, cse)' | FileCheck %s

// torch-mlir's max_pool3d (kernel 1x2x2, stride 1x2x2): one task per
// (channel, output depth); each output row of 6 columns is one full and one
// masked 4-lane vector; each of the 4 window positions is a strided gather
// (W stride 2) folded with maximumf into an accumulator that starts at the
// fill value (-inf).
// CHECK-LABEL: func.func @pool
// CHECK-NOT: linalg.generic
// CHECK: call @rt3d_pool_dispatch_0(%{{.*}}, %{{.*}}) : (memref<4608xf32>, memref<1152xf32>) -> ()
// CHECK-LABEL: func.func @two_pools
// CHECK: call @rt3d_pool_dispatch_1(
// CHECK: call @rt3d_pool_dispatch_2(
// CHECK-LABEL: func.func @rt3d_pool_kernel_0
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 32 : i64}
// CHECK-DAG: %[[NEGINF:.*]] = arith.constant dense<0xFF800000> : vector<4xf32>
// CHECK-DAG: %[[STRIDE:.*]] = arith.constant dense<[0, 2, 4, 6]> : vector<4xi32>
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-4: vector.gather %{{.*}}[%{{.*}}] [%[[STRIDE]]]
// CHECK: vector.store
// CHECK: vector.constant_mask [2] : vector<4xi1>
// CHECK-COUNT-4: vector.gather
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

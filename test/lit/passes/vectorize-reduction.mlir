// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-reduction{vector-width=4 min-elements=0}, canonicalize, cse)' | FileCheck %s

// A sum over (D, H, W) with keepdim (a squeeze-excitation pool before its
// division): 3 rows of 42 elements, one task. Each row: two 16-element
// steps into 4 independent accumulators, then two more vectors and a masked
// one (2 elements), folded and reduced to a scalar, plus the fill value.
// CHECK-LABEL: func.func @sum
// CHECK-NOT: linalg.generic
// CHECK: call @rt3d_reduction_dispatch_0(%{{.*}}, %{{.*}}) : (memref<126xf32>, memref<3xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_reduction_kernel_0
// CHECK-SAME: rt3d.parallel_tasks = 1 : i64
// CHECK-DAG: %[[INIT:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: scf.for %[[TASK:.*]] = %{{.*}} to %{{.*}} step
// CHECK: scf.for %[[ROW:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[SUMS:.*]]:4 = scf.for
// CHECK-COUNT-4: vector.load
// CHECK: scf.yield
// CHECK-COUNT-2: vector.load
// CHECK: vector.constant_mask [2] : vector<4xi1>
// CHECK: vector.maskedload
// CHECK: %[[R:.*]] = vector.reduction <add>, %{{.*}} : vector<4xf32> into f32
// CHECK: %[[V:.*]] = arith.addf %[[R]], %[[INIT]] : f32
// CHECK: memref.store %[[V]], %{{.*}}[%[[ROW]]] : memref<3xf32>
#id = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#keep = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, 0, 0)>
func.func @sum(%arg0: tensor<1x3x2x3x7xf32>) -> tensor<1x3x1x1x1xf32> {
  %cst = arith.constant 0.5 : f32
  %0 = tensor.empty() : tensor<1x3x1x1x1xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x3x1x1x1xf32>) -> tensor<1x3x1x1x1xf32>
  %2 = linalg.generic {indexing_maps = [#id, #keep], iterator_types = ["parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%arg0 : tensor<1x3x2x3x7xf32>) outs(%1 : tensor<1x3x1x1x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %3 = arith.addf %in, %out : f32
    linalg.yield %3 : f32
  } -> tensor<1x3x1x1x1xf32>
  return %2 : tensor<1x3x1x1x1xf32>
}

// -----

// A maximum over the last dim into a lower-rank output: neutral -inf (the
// scalar max with the -inf fill folds away).
// CHECK-LABEL: func.func @rt3d_reduction_kernel_0
// CHECK: vector.reduction <maximumf>
// CHECK-NOT: arith.maximumf {{.*}} : f32
// CHECK: memref.store
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @max(%arg0: tensor<6x8xf32>) -> tensor<6xf32> {
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<6xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<6xf32>) -> tensor<6xf32>
  %2 = linalg.generic {indexing_maps = [#id2, #row], iterator_types = ["parallel", "reduction"]} ins(%arg0 : tensor<6x8xf32>) outs(%1 : tensor<6xf32>) {
  ^bb0(%in: f32, %out: f32):
    %3 = arith.maximumf %in, %out : f32
    linalg.yield %3 : f32
  } -> tensor<6xf32>
  return %2 : tensor<6xf32>
}

// -----

// A reduction over D only (not a suffix of the dims) is left alone.
// CHECK-LABEL: func.func @depth_only
// CHECK: linalg.generic
// CHECK-NOT: call
#id3 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#keephw = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, d3, d4)>
func.func @depth_only(%arg0: tensor<1x3x2x3x5xf32>) -> tensor<1x3x1x3x5xf32> {
  %cst = arith.constant 0.0 : f32
  %0 = tensor.empty() : tensor<1x3x1x3x5xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x3x1x3x5xf32>) -> tensor<1x3x1x3x5xf32>
  %2 = linalg.generic {indexing_maps = [#id3, #keephw], iterator_types = ["parallel", "parallel", "reduction", "parallel", "parallel"]} ins(%arg0 : tensor<1x3x2x3x5xf32>) outs(%1 : tensor<1x3x1x3x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %3 = arith.addf %in, %out : f32
    linalg.yield %3 : f32
  } -> tensor<1x3x1x3x5xf32>
  return %2 : tensor<1x3x1x3x5xf32>
}

// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-elementwise{vector-width=16 chunk=32 min-elements=1}, canonicalize, cse)' | FileCheck %s

// A residual add + ReLU (torch-mlir's select form) over 120 elements: tasks
// of 32 elements, whole 16-lane vectors, and a masked tail of 8 in the last
// task. The scalar body is replayed on vectors; the 0.0 constant becomes a
// splat.
// CHECK-LABEL: func.func @residual
// CHECK: call @rt3d_elementwise_dispatch_0(%{{.*}}, %{{.*}}, %{{.*}}) : (memref<120xf32>, memref<120xf32>, memref<120xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_elementwise_kernel_0
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 4 : i64}
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<16xf32>
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c16
// CHECK: %[[A:.*]] = vector.load %{{.*}}[%[[I]]] : memref<120xf32>, vector<16xf32>
// CHECK: %[[B:.*]] = vector.load %{{.*}}[%[[I]]] : memref<120xf32>, vector<16xf32>
// CHECK: %[[S:.*]] = arith.addf %[[A]], %[[B]] : vector<16xf32>
// CHECK: %[[C:.*]] = arith.cmpf ugt, %[[S]], %[[ZERO]] : vector<16xf32>
// CHECK: %[[R:.*]] = arith.select %[[C]], %[[S]], %[[ZERO]] : vector<16xi1>, vector<16xf32>
// CHECK: vector.store %[[R]], %{{.*}}[%[[I]]]
// CHECK: scf.if
// CHECK: %[[M:.*]] = vector.constant_mask [8] : vector<16xi1>
// CHECK: vector.maskedload %{{.*}}[%c112], %[[M]]
// CHECK: vector.maskedstore %{{.*}}[%c112], %[[M]]
func.func @residual(%a: tensor<1x2x3x4x5xf32>, %b: tensor<1x2x3x4x5xf32>) -> tensor<1x2x3x4x5xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x3x4x5xf32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a, %b : tensor<1x2x3x4x5xf32>, tensor<1x2x3x4x5xf32>) outs(%e : tensor<1x2x3x4x5xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    %c = arith.cmpf ugt, %s, %zero : f32
    %r = arith.select %c, %s, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x4x5xf32>
  return %0 : tensor<1x2x3x4x5xf32>
}

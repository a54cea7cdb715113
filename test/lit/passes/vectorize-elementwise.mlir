// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-elementwise{vector-width=16 chunk=32 min-elements=1}, canonicalize, cse)' | FileCheck %s

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

// -----

// A squeeze-excitation gate (x * g[n, c]) and SiLU's exp: the gate is read
// at flat index // (D*H*W). Here D*H*W = 60 is not a multiple of 16, so the
// gate's lanes are gathered (channel = (index + lane) / 60); the input keeps
// its contiguous loads.
// CHECK-LABEL: func.func @gate
// CHECK: call @rt3d_elementwise_dispatch_0(%{{.*}}, %{{.*}}, %{{.*}}) : (memref<120xf32>, memref<2xf32>, memref<120xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_elementwise_kernel_0
// CHECK-DAG: %[[LANES:.*]] = arith.constant dense<[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]> : vector<16xi32>
// CHECK-DAG: %[[INNER:.*]] = arith.constant dense<60> : vector<16xi32>
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c16
// CHECK: %[[X:.*]] = vector.load %{{.*}}[%[[I]]] : memref<120xf32>, vector<16xf32>
// CHECK: %[[FIRST:.*]] = arith.index_cast %[[I]] : index to i32
// CHECK: %[[SPLAT:.*]] = vector.broadcast %[[FIRST]] : i32 to vector<16xi32>
// CHECK: %[[POS:.*]] = arith.addi %[[SPLAT]], %[[LANES]] : vector<16xi32>
// CHECK: %[[CH:.*]] = arith.divui %[[POS]], %[[INNER]] : vector<16xi32>
// CHECK: %[[G:.*]] = vector.gather %{{.*}}[%c0] [%[[CH]]], %{{.*}}, %{{.*}} : memref<2xf32>, vector<16xi32>, vector<16xi1>, vector<16xf32> into vector<16xf32>
// CHECK: %[[E:.*]] = math.exp %[[X]] : vector<16xf32>
// CHECK: arith.mulf %[[E]], %[[G]] : vector<16xf32>
func.func @gate(%a: tensor<1x2x3x4x5xf32>, %g: tensor<1x2x1x1x1xf32>) -> tensor<1x2x3x4x5xf32> {
  %e = tensor.empty() : tensor<1x2x3x4x5xf32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, 0, 0)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a, %g : tensor<1x2x3x4x5xf32>, tensor<1x2x1x1x1xf32>) outs(%e : tensor<1x2x3x4x5xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %ex = math.exp %x : f32
    %r = arith.mulf %ex, %y : f32
    linalg.yield %r : f32
  } -> tensor<1x2x3x4x5xf32>
  return %0 : tensor<1x2x3x4x5xf32>
}

// -----

// With D*H*W = 32, a multiple of the vector length, one gate element serves
// a whole vector: a scalar load and a splat.
// CHECK-LABEL: func.func @rt3d_elementwise_kernel_0
// CHECK: %[[C:.*]] = arith.divui %{{.*}}, %c32 : index
// CHECK: %[[S:.*]] = memref.load %{{.*}}[%[[C]]] : memref<4xf32>
// CHECK: vector.broadcast %[[S]] : f32 to vector<16xf32>
func.func @aligned_gate(%a: tensor<1x4x2x4x4xf32>, %g: tensor<1x4x1x1x1xf32>) -> tensor<1x4x2x4x4xf32> {
  %e = tensor.empty() : tensor<1x4x2x4x4xf32>
  %0 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, 0, 0)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a, %g : tensor<1x4x2x4x4xf32>, tensor<1x4x1x1x1xf32>) outs(%e : tensor<1x4x2x4x4xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %r = arith.mulf %x, %y : f32
    linalg.yield %r : f32
  } -> tensor<1x4x2x4x4xf32>
  return %0 : tensor<1x4x2x4x4xf32>
}

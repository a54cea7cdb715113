// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-broadcast{vector-width=4 min-elements=1 chunk=20}, canonicalize, cse)' | FileCheck %s

#in = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d4)>
#out = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4, d5)>

// A nearest upsampling by (2, 2) of 1x2x3x5, as prepare_graph writes it:
// groups 6 kept, 2 broadcast, 5 kept, 2 broadcast (its kernel is checked
// at the end).
// CHECK-LABEL: func.func @upsample
// CHECK-NOT: linalg.generic
// CHECK: call @rt3d_broadcast_dispatch_0(%{{.*}}, %{{.*}}) : (memref<30xf32>, memref<120xf32>) -> ()
func.func @upsample(%a: tensor<1x2x3x5xf32>) -> tensor<1x2x3x2x5x2xf32> {
  %e = tensor.empty() : tensor<1x2x3x2x5x2xf32>
  %r = linalg.generic {indexing_maps = [#in, #out],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%a : tensor<1x2x3x5xf32>) outs(%e : tensor<1x2x3x2x5x2xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<1x2x3x2x5x2xf32>
  return %r : tensor<1x2x3x2x5x2xf32>
}

#in4 = affine_map<(d0, d1, d2) -> (d0, d1)>
#out4 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// Each element repeated 8 times (at least the 4 lanes).
// CHECK-LABEL: func.func @repeat
// CHECK: call @rt3d_broadcast_dispatch_1
func.func @repeat(%a: tensor<2x3xf32>) -> tensor<2x3x8xf32> {
  %e = tensor.empty() : tensor<2x3x8xf32>
  %r = linalg.generic {indexing_maps = [#in4, #out4], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : tensor<2x3xf32>) outs(%e : tensor<2x3x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<2x3x8xf32>
  return %r : tensor<2x3x8xf32>
}

// Not broadcasting copies: the body computes, or the input is permuted.
// CHECK-LABEL: func.func @computes
// CHECK: linalg.generic
// CHECK-NOT: call @
func.func @computes(%a: tensor<2x3xf32>) -> tensor<2x3x8xf32> {
  %e = tensor.empty() : tensor<2x3x8xf32>
  %r = linalg.generic {indexing_maps = [#in4, #out4], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : tensor<2x3xf32>) outs(%e : tensor<2x3x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %y = arith.addf %x, %x : f32
    linalg.yield %y : f32
  } -> tensor<2x3x8xf32>
  return %r : tensor<2x3x8xf32>
}

#perm = affine_map<(d0, d1, d2) -> (d1, d0)>
// CHECK-LABEL: func.func @permuted
// CHECK: linalg.generic
// CHECK-NOT: call @
func.func @permuted(%a: tensor<3x2xf32>) -> tensor<2x3x8xf32> {
  %e = tensor.empty() : tensor<2x3x8xf32>
  %r = linalg.generic {indexing_maps = [#perm, #out4], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : tensor<3x2xf32>) outs(%e : tensor<2x3x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<2x3x8xf32>
  return %r : tensor<2x3x8xf32>
}

// The upsampling's kernel: 12 output rows of 10, two rows per task (chunk
// 20): 6 tasks. Each row: one full vector of 4 inputs shuffled into 2
// output vectors, then the 5th input (a masked load) shuffled and stored
// under a 2-lane mask.
// CHECK-LABEL: func.func @rt3d_broadcast_kernel_0
// CHECK-SAME: rt3d.parallel_tasks = 6 : i64
// CHECK: scf.for
// CHECK: %[[X:.*]] = vector.load
// CHECK: %[[LO:.*]] = vector.shuffle %[[X]], %{{.*}} [0, 0, 1, 1]
// CHECK: vector.store %[[LO]]
// CHECK: %[[HI:.*]] = vector.shuffle %[[X]], %{{.*}} [2, 2, 3, 3]
// CHECK: vector.store %[[HI]]
// CHECK: %[[ONE:.*]] = vector.constant_mask [1] : vector<4xi1>
// CHECK: %[[Y:.*]] = vector.maskedload %{{.*}}, %[[ONE]]
// CHECK: %[[Y0:.*]] = vector.shuffle %[[Y]], %{{.*}} [0, 0, 1, 1]
// CHECK: %[[TWO:.*]] = vector.constant_mask [2] : vector<4xi1>
// CHECK: vector.maskedstore %{{.*}}, %[[TWO]], %[[Y0]]

// The repeat's kernel: each element splat over its run of 8 (2 stores).
// CHECK-LABEL: func.func @rt3d_broadcast_kernel_1
// CHECK: %[[E:.*]] = memref.load
// CHECK: %[[S:.*]] = vector.broadcast %[[E]] : f32 to vector<4xf32>
// CHECK-COUNT-2: vector.store %[[S]]

// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-vectorize-pad{vector-width=4 min-elements=1}, canonicalize, cse)' | FileCheck %s

// Zero padding of D (1, 1) and W (1, 2): one task per (channel, padded
// depth). Interior rows are written once: 1 padding value, the 5 input
// values (a full and a masked vector), 2 padding values; other rows are
// filled (two 4-lane vectors for the 8-wide row).
// CHECK-LABEL: func.func @pad
// CHECK-NOT: tensor.pad
// CHECK: call @rt3d_pad_dispatch_0(%{{.*}}, %{{.*}}) : (memref<120xf32>, memref<320xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_pad_kernel_0
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 10 : i64}
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<4xf32>
// CHECK: scf.for
// CHECK: scf.if
// CHECK: %[[ONE:.*]] = vector.constant_mask [1] : vector<4xi1>
// CHECK: vector.maskedstore %{{.*}}, %[[ONE]], %[[ZERO]]
// CHECK: %[[X:.*]] = vector.load
// CHECK: vector.store %[[X]]
// CHECK: vector.maskedload %{{.*}}, %[[ONE]]
// CHECK: vector.maskedstore
// CHECK: %[[TWO:.*]] = vector.constant_mask [2] : vector<4xi1>
// CHECK: vector.maskedstore %{{.*}}, %[[TWO]], %[[ZERO]]
// CHECK: } else {
// CHECK-COUNT-2: vector.store %[[ZERO]]
func.func @pad(%a: tensor<1x2x3x4x5xf32>) -> tensor<1x2x5x4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %a low[0, 0, 1, 0, 1] high[0, 0, 1, 0, 2] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index, %i4: index):
    tensor.yield %zero : f32
  } : tensor<1x2x3x4x5xf32> to tensor<1x2x5x4x8xf32>
  return %p : tensor<1x2x5x4x8xf32>
}

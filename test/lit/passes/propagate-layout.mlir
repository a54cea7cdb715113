// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4}, rt3d-vectorize{vector-width=4})' | FileCheck %s --check-prefix=KERNEL

// A "filters" conv whose one block is channels 0-3 in order, read only by a
// "filters" conv: the activation between them becomes (N, C / 4, D, H, W, 4),
// the producer writes it, and the consumer's entry offsets (channel run 0 at
// W positions 0 and 1 of a 1x2x2 plane) index it: 0 -> 0, 1 -> 1 x 4.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Y:.*]] = "rt3d.packed_conv3d"
// CHECK-SAME: output_layout = "blocked"
// CHECK-SAME: -> tensor<1x1x1x2x2x4xf32>
// CHECK: %[[OFF:.*]] = arith.constant dense<[0, 4]> : tensor<2xi32>
// CHECK: "rt3d.packed_conv3d"(%[[Y]], %{{.*}}, %[[OFF]],
// CHECK-SAME: input_layout = "blocked"
// CHECK-SAME: (tensor<1x1x1x2x2x4xf32>,
// CHECK-SAME: -> tensor<1x4x1x2x1xf32>
// The producer's kernel stores each position's 4 filters as one vector of
// the blocked output (no scratch tile, no gathers); the consumer (plain
// output) keeps the transposing store through its scratch tile.
// KERNEL-LABEL: func.func @rt3d_conv_kernel_0(
// KERNEL-SAME: %{{.*}}: memref<16xf32>, %{{.*}}: i64, %{{.*}}: i64)
// KERNEL-NOT: alloca
// KERNEL-NOT: vector.gather
// KERNEL: vector.store %{{.*}} : memref<16xf32>, vector<4xf32>
// KERNEL: vector.store %{{.*}} : memref<16xf32>, vector<4xf32>
// KERNEL-LABEL: func.func @rt3d_conv_kernel_1(
// KERNEL: memref.alloca
// KERNEL: vector.gather
func.func @chain(%x: tensor<1x1x1x2x2xf32>) -> tensor<1x4x1x2x1xf32> {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  return %z : tensor<1x4x1x2x1xf32>
}

// -----

// Stays plain: a block whose lanes are not channels 0-3 in order (the
// permutation of clustered kernel groups), and an activation with a second
// user.
// CHECK-LABEL: func.func @plain
// CHECK-NOT: layout
// CHECK: return
func.func @plain(%x: tensor<1x1x1x2x2xf32>) -> (tensor<1x4x1x2x1xf32>, tensor<1x4x1x2x2xf32>) {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %swapped = arith.constant dense<[1, 0, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %swapped, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  %y2 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %z2 = "rt3d.packed_conv3d"(%y2, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  return %z2, %y2 : tensor<1x4x1x2x1xf32>, tensor<1x4x1x2x2xf32>
}

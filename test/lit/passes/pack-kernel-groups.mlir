// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{vector-width=4 block-size=4})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{vector-width=2 block-size=2})' | FileCheck %s --check-prefix=REORDER
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{vector-width=2 block-size=2 reorder-filters=false})' | FileCheck %s --check-prefix=INORDER
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{vector-width=4})' | FileCheck %s --check-prefix=AUTO
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pack-kernel-groups{target=spirv})' | FileCheck %s --check-prefix=SPIRV

// By default, groups narrower than the vector get a block each (the
// "width" kernels put output columns in the lanes): no union, no zeros.
// AUTO-LABEL: func.func @two_groups_one_block
// AUTO-DAG: arith.constant dense<[1.000000e+00, 5.000000e+00, 3.000000e+00, 7.000000e+00, 2.000000e+00, 6.000000e+00, 4.000000e+00, 8.000000e+00]> : tensor<8xf32>
// AUTO-DAG: arith.constant dense<[0, 2, 2]> : tensor<3xi32>
// AUTO: "rt3d.packed_conv3d"
// AUTO-SAME: block_size = 2 : i64
// AUTO-SAME: dense_weights = 24 : i64
// AUTO-SAME: kept_weights = 8 : i64

// GPU kernels hold a block in vec4 accumulators: at least 4 filters, so the
// two 2-filter groups share one block there too (and 1x1 groups below
// share blocks of 4).
// SPIRV-LABEL: func.func @two_groups_one_block
// SPIRV: "rt3d.packed_conv3d"
// SPIRV-SAME: block_size = 4 : i64
// SPIRV-LABEL: func.func @reorder
// SPIRV: "rt3d.packed_conv3d"
// SPIRV-SAME: block_size = 4 : i64

// Two 2x2 groups share one 4-lane block. Only kw=0 and kw=2 are kept (by
// filters 0-1; filters 2-3 keep nothing), so the block has two entries of
// two channels each: weights [entry][channel][lane], zeros in the lanes of
// the group that drops the position; offsets index the padded input
// (W padded 4 -> 6: kw=2 is 2 elements further).
// CHECK-LABEL: func.func @two_groups_one_block
// CHECK-DAG: %[[W:.*]] = arith.constant dense<[1.000000e+00, 5.000000e+00, 0.000000e+00, 0.000000e+00, 3.000000e+00, 7.000000e+00, 0.000000e+00, 0.000000e+00, 2.000000e+00, 6.000000e+00, 0.000000e+00, 0.000000e+00, 4.000000e+00, 8.000000e+00, 0.000000e+00, 0.000000e+00]> : tensor<16xf32>
// CHECK-DAG: %[[OFF:.*]] = arith.constant dense<[0, 2]> : tensor<2xi32>
// CHECK-DAG: %[[LANES:.*]] = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
// CHECK-DAG: %[[BIAS:.*]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
// CHECK: "rt3d.packed_conv3d"(%arg0, %[[W]], %[[OFF]], %{{.*}}, %[[LANES]], %[[BIAS]])
// CHECK-SAME: activation = "relu"
// CHECK-SAME: block_size = 4 : i64
// CHECK-SAME: channel_unroll = 2 : i64
// CHECK-SAME: padding_low = array<i64: 0, 0, 1>
// CHECK-SAME: -> tensor<1x4x4x4x4xf32>
// CHECK-NOT: rt3d.kgs_conv3d
func.func @two_groups_one_block(%arg0: tensor<1x2x4x4x4xf32>) -> tensor<1x4x4x4x4xf32> {
  %w = arith.constant dense<[[[[[1.0, 9.0, 2.0]]], [[[3.0, 9.0, 4.0]]]], [[[[5.0, 9.0, 6.0]]], [[[7.0, 9.0, 8.0]]]], [[[[9.0, 9.0, 9.0]]], [[[9.0, 9.0, 9.0]]]], [[[[9.0, 9.0, 9.0]]], [[[9.0, 9.0, 9.0]]]]]> : tensor<4x2x1x1x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w, %b) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 2, 2>, masks = dense<[[[[[true, false, true]]]], [[[[false, false, false]]]]]> : tensor<2x1x1x1x3xi1>, operandSegmentSizes = array<i32: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// Filters 0 and 2 keep kw=0, filters 1 and 3 keep kw=1. With 2-lane blocks
// the clustering puts filters with the same positions together: blocks
// {0, 2} and {1, 3}, one entry each; the lane table records the
// permutation. In order, each block would need both positions.
// REORDER-LABEL: func.func @reorder
// REORDER-DAG: arith.constant dense<[1.000000e+00, 3.000000e+00, 2.000000e+00, 4.000000e+00]> : tensor<4xf32>
// REORDER-DAG: arith.constant dense<[0, 1]> : tensor<2xi32>
// REORDER-DAG: arith.constant dense<[0, 1, 2]> : tensor<3xi32>
// REORDER-DAG: arith.constant dense<[0, 2, 1, 3]> : tensor<4xi32>
// REORDER: "rt3d.packed_conv3d"
// REORDER-SAME: block_size = 2 : i64
// INORDER-LABEL: func.func @reorder
// INORDER-DAG: arith.constant dense<[1.000000e+00, 0.000000e+00, 0.000000e+00, 2.000000e+00, 3.000000e+00, 0.000000e+00, 0.000000e+00, 4.000000e+00]> : tensor<8xf32>
// INORDER-DAG: arith.constant dense<[0, 1, 0, 1]> : tensor<4xi32>
// INORDER-DAG: arith.constant dense<[0, 2, 4]> : tensor<3xi32>
// INORDER-DAG: arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
func.func @reorder(%arg0: tensor<1x1x2x2x3xf32>) -> tensor<1x4x2x2x2xf32> {
  %w = arith.constant dense<[[[[[1.0, 0.0]]]], [[[[0.0, 2.0]]]], [[[[3.0, 0.0]]]], [[[[0.0, 4.0]]]]]> : tensor<4x1x1x1x2xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<[[[[[true, false]]]], [[[[false, true]]]], [[[[true, false]]]], [[[[false, true]]]]]> : tensor<4x1x1x1x2xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x2x2x3xf32>, tensor<4x1x1x1x2xf32>) -> tensor<1x4x2x2x2xf32>
  return %0 : tensor<1x4x2x2x2xf32>
}

// -----

// A weight that is not a constant stays for the reference lowering.
// CHECK-LABEL: func.func @dynamic_weight
// CHECK: rt3d.kgs_conv3d
// CHECK-NOT: rt3d.packed_conv3d
func.func @dynamic_weight(%arg0: tensor<1x1x2x2x3xf32>, %w: tensor<4x1x1x1x2xf32>) -> tensor<1x4x2x2x2xf32> {
  %0 = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<4x1x1x1x2xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x2x2x3xf32>, tensor<4x1x1x1x2xf32>) -> tensor<1x4x2x2x2xf32>
  return %0 : tensor<1x4x2x2x2xf32>
}

// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pad-channels{target=host vector-width=4})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pad-channels{target=host vector-width=1})' | FileCheck %s --check-prefix=NONE
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-pad-channels{target=host vector-width=2})' | FileCheck %s --check-prefix=DW

// 15 channels between two convs become 16 (a block of 4 divides them; one more is under an
// eighth): the producer gets a zero filter and a zero bias, the reader a zero input channel. The
// producer's 4x2 groups still number 4; the reader's 1x1 groups get a 16th, empty, column.
// CHECK-LABEL: func.func @pads
// CHECK-DAG: %[[BIAS:.*]] = arith.constant dense<[5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 5.000000e-01, 0.000000e+00]> : tensor<16xf32>
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{.*}}[1.000000e+00]]]], {{\[\[\[\[}}0.000000e+00]]], {{\[\[\[}}0.000000e+00]]]]]> : tensor<16x2x1x1x1xf32>
// CHECK: %[[A:.*]] = "rt3d.kgs_conv3d"(%arg0, %[[W]], %[[BIAS]]) {activation = "relu"
// CHECK-SAME: group_shape = array<i64: 4, 2>, masks = dense<true> : tensor<4x1x1x1x1xi1>
// CHECK-SAME: (tensor<1x2x2x2x2xf32>, tensor<16x2x1x1x1xf32>, tensor<16xf32>) -> tensor<1x16x2x2x2xf32>
// CHECK: %[[B:.*]] = "rt3d.kgs_conv3d"(%[[A]], %{{[a-z0-9_]+}})
// CHECK-SAME: group_shape = array<i64: 1, 1>
// CHECK-SAME: masks = dense<"0x0101010101010101010101010101010001010101010101010101010101010100010101010101010101010101010101000101010101010101010101010101010001010101010101010101010101010100010101010101010101010101010101000101010101010101010101010101010001010101010101010101010101010100"> : tensor<8x16x1x1x1xi1>
// CHECK-SAME: (tensor<1x16x2x2x2xf32>, tensor<8x16x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
// CHECK: return %[[B]]
// NONE-LABEL: func.func @pads
// NONE: tensor<1x15x2x2x2xf32>
func.func @pads(%arg0: tensor<1x2x2x2x2xf32>) -> tensor<1x8x2x2x2xf32> {
  %w = arith.constant dense<1.0> : tensor<15x2x1x1x1xf32>
  %b = arith.constant dense<0.5> : tensor<15xf32>
  %w2 = arith.constant dense<2.0> : tensor<8x15x1x1x1xf32>
  %a = "rt3d.kgs_conv3d"(%arg0, %w, %b) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 4, 2>, masks = dense<true> : tensor<4x1x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x2x2x2xf32>, tensor<15x2x1x1x1xf32>, tensor<15xf32>) -> tensor<1x15x2x2x2xf32>
  %y = "rt3d.kgs_conv3d"(%a, %w2) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<8x15x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x15x2x2x2xf32>, tensor<8x15x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
  return %y : tensor<1x8x2x2x2xf32>
}

// -----

// The activation is also a result of the function: it keeps its 15 channels.
// CHECK-LABEL: func.func @two_readers
// CHECK: tensor<15x2x1x1x1xf32>) -> tensor<1x15x2x2x2xf32>
// CHECK: tensor<8x15x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
func.func @two_readers(%arg0: tensor<1x2x2x2x2xf32>) -> (tensor<1x15x2x2x2xf32>, tensor<1x8x2x2x2xf32>) {
  %w = arith.constant dense<1.0> : tensor<15x2x1x1x1xf32>
  %w2 = arith.constant dense<2.0> : tensor<8x15x1x1x1xf32>
  %a = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 4, 2>, masks = dense<true> : tensor<4x1x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x2x2x2xf32>, tensor<15x2x1x1x1xf32>) -> tensor<1x15x2x2x2xf32>
  %y = "rt3d.kgs_conv3d"(%a, %w2) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 8, 4>, masks = dense<true> : tensor<1x4x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x15x2x2x2xf32>, tensor<8x15x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
  return %a, %y : tensor<1x15x2x2x2xf32>, tensor<1x8x2x2x2xf32>
}

// -----

// 6 channels would become 8: a third more, left alone.
// CHECK-LABEL: func.func @too_many
// CHECK: -> tensor<1x6x2x2x2xf32>
func.func @too_many(%arg0: tensor<1x2x2x2x2xf32>) -> tensor<1x8x2x2x2xf32> {
  %w = arith.constant dense<1.0> : tensor<6x2x1x1x1xf32>
  %w2 = arith.constant dense<2.0> : tensor<8x6x1x1x1xf32>
  %a = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<3x1x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x2x2x2xf32>, tensor<6x2x1x1x1xf32>) -> tensor<1x6x2x2x2xf32>
  %y = "rt3d.kgs_conv3d"(%a, %w2) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 8, 2>, masks = dense<true> : tensor<1x3x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x6x2x2x2xf32>, tensor<8x6x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
  return %y : tensor<1x8x2x2x2xf32>
}

// -----

// Read by a depthwise conv (a diagonal weight, as the importer makes of groups=9): padding its
// channels would break the diagonal, so 9 channels stay (with blocks of 2, 10 would be a ninth
// more: DW; with blocks of 4, 12 is a third more anyway).
// CHECK-LABEL: func.func @depthwise_reader
// CHECK: -> tensor<1x9x2x2x2xf32>
// DW-LABEL: func.func @depthwise_reader
// DW: -> tensor<1x9x2x2x2xf32>
// DW: (tensor<1x9x2x2x2xf32>, tensor<9x9x1x1x1xf32>) -> tensor<1x9x2x2x2xf32>
func.func @depthwise_reader(%arg0: tensor<1x2x2x2x2xf32>) -> tensor<1x9x2x2x2xf32> {
  %w = arith.constant dense<1.0> : tensor<9x2x1x1x1xf32>
  %w2 = arith.constant dense<[[[[[1.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]], [[[0.0]]]], [[[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[0.0]]], [[[1.0]]]]]> : tensor<9x9x1x1x1xf32>
  %a = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 2>, masks = dense<true> : tensor<9x1x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x2x2x2xf32>, tensor<9x2x1x1x1xf32>) -> tensor<1x9x2x2x2xf32>
  %y = "rt3d.kgs_conv3d"(%a, %w2) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<9x9x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x9x2x2x2xf32>, tensor<9x9x1x1x1xf32>) -> tensor<1x9x2x2x2xf32>
  return %y : tensor<1x9x2x2x2xf32>
}

// RUN: not rt3d-opt %s --split-input-file 2>&1 | FileCheck %s

// CHECK: verifier.mlir:[[# @LINE + 2]]:{{[0-9]+}}: error: 'rt3d.kgs_conv3d' op input has 3 channels but the weight expects 2
func.func @channels(%x: tensor<1x3x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x3x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op 'masks' shape (1, 1, 1, 1, 1) does not match weight (4, 2, 1, 1, 1) with group shape (2, 2): expected (2, 1, 1, 1, 1)
func.func @mask_shape(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<1x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op 'masks' must have i1 elements
func.func @mask_type(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<1> : tensor<2x1x1x1x1xi8>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op result shape (1, 4, 4, 4, 4) does not match the computed output shape (1, 4, 2, 4, 4)
func.func @result_shape(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 2, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op activation must be one of none, relu, sigmoid, silu, got 'gelu'
func.func @activation(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "gelu", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op 'strides' must have 3 entries, got 2
func.func @strides(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op bias must have shape (4,), got (3,)
func.func @bias(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>, %b: tensor<3xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w, %b) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>, tensor<3xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op weight must be rank 5 (F, C, Kd, Kh, Kw), got rank 4
func.func @weight_rank(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op weights has 15 elements, expected entries x channel_unroll x block_size = 2 x 2 x 4
func.func @packed_weights(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<15xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<15xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op 'loop_order' must be one of fdhw, dfhw, dhfw, got 'whdf'
func.func @packed_order(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, loop_order = "whdf"} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op input must have f32 elements, got f16
func.func @kgs_element_type(%x: tensor<1x2x4x4x4xf16>, %w: tensor<4x2x1x1x1xf16>) -> tensor<1x4x4x4x4xf16> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<1x2x4x4x4xf16>, tensor<4x2x1x1x1xf16>) -> tensor<1x4x4x4x4xf16>
  return %0 : tensor<1x4x4x4x4xf16>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op 'operandSegmentSizes' [1, 1, 1] describes 3 operands, the op has 2
func.func @kgs_segments(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none", operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.kgs_conv3d' op requires 'operandSegmentSizes' (array<i32>) for its optional operand
func.func @kgs_no_segments(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>, padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 0>, group_shape = array<i64: 2, 2>, masks = dense<true> : tensor<2x1x1x1x1xi1>, activation = "none"} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x1xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op entry_offsets[1] = 96 is not a channel run and kernel position inside the padded input (1, 2, 4, 4, 6)
func.func @packed_offset_outside(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 96]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op entry_offsets[0] = -1 is not a channel run and kernel position inside the padded input (1, 2, 4, 4, 6)
func.func @packed_offset_negative(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[-1, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op out_channels holds 3, outside -1 (no filter) and the result's 3 channels
func.func @packed_lane_channel(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op block_starts must rise from 0 to the 2 entries, got [0, 1, 0, 2]...
func.func @packed_block_starts(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<8xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 1, 0, 2]> : tensor<4xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1, -1, -1]> : tensor<6xi32>
  %bias = arith.constant dense<0.0> : tensor<6xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 2 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<8xf32>, tensor<2xi32>, tensor<4xi32>, tensor<6xi32>, tensor<6xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op result shape (1, 3, 4, 4, 4) does not match the computed output shape (1, 3, 4, 4, 2)
func.func @packed_result_shape(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 5>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op requires 'kernel_size' as array<i64> of 3 entries >= 1
func.func @packed_no_kernel_size(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op entry_offsets must have i32 elements, got i64
func.func @packed_table_type(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi64>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi64>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op 'channel_chunk' needs vector_dim "width" and loop_order "dhfw"
func.func @chunk_needs_width(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, loop_order = "fdhw", vector_dim = "width", channel_chunk = 2 : i64} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op 'channel_chunk' must be a positive multiple of channel_unroll 2
func.func @chunk_multiple(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, loop_order = "dhfw", vector_dim = "width", channel_chunk = 3 : i64} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op a blocked result needs each block's lanes to be one block of channels, in order
func.func @blocked_permuted(%x: tensor<1x1x1x2x2xf32>) -> tensor<1x1x1x2x2x4xf32> {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[1, 0, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, output_layout = "blocked"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x1x1x2x2x4xf32>
  return %y : tensor<1x1x1x2x2x4xf32>
}

// -----

// CHECK: error: 'rt3d.packed_conv3d' op a blocked input needs vector_dim "filters", not "width"
func.func @blocked_width(%x: tensor<1x1x1x2x2x4xf32>) -> tensor<1x4x1x2x2xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, input_layout = "blocked", vector_dim = "width"} : (tensor<1x1x1x2x2x4xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  return %y : tensor<1x4x1x2x2xf32>
}

// -----

// int8 quads: i8 weights need an i8 input (and the reverse).
// CHECK: error: 'rt3d.packed_conv3d' op i8 weights (int8 channel quads) and an i8 input go together
func.func @int8_weights_on_f32(%x: tensor<1x1x1x2x2x4xf32>) -> tensor<1x4x1x2x2xf32> {
  %w = arith.constant dense<1> : tensor<16xi8>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<8xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, input_layout = "blocked"} : (tensor<1x1x1x2x2x4xf32>, tensor<16xi8>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<8xf32>) -> tensor<1x4x1x2x2xf32>
  return %y : tensor<1x4x1x2x2xf32>
}

// -----

// An i8 input is blocked by 4 channels.
// CHECK: error: 'rt3d.packed_conv3d' op an i8 input must be blocked by 4 channels, read in channel runs that are multiples of 4
func.func @int8_blocks_of_8(%x: tensor<1x1x1x2x2x8xi8>) -> tensor<1x4x1x2x2xf32> {
  %w = arith.constant dense<1> : tensor<32xi8>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<8xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 8 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, input_layout = "blocked"} : (tensor<1x1x1x2x2x8xi8>, tensor<32xi8>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<8xf32>) -> tensor<1x4x1x2x2xf32>
  return %y : tensor<1x4x1x2x2xf32>
}

// -----

// Its bias operand holds the biases, then the dequantization factors.
// CHECK: error: 'rt3d.packed_conv3d' op out_channels must have blocks x block_size = 4 elements, bias 2 x blocks x block_size = 8
func.func @int8_bias_without_factors(%x: tensor<1x1x1x2x2x4xi8>) -> tensor<1x4x1x2x2xf32> {
  %w = arith.constant dense<1> : tensor<16xi8>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, input_layout = "blocked"} : (tensor<1x1x1x2x2x4xi8>, tensor<16xi8>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  return %y : tensor<1x4x1x2x2xf32>
}

// -----

// An i8 input comes padded with its zero point, by the kernel that quantizes it.
// CHECK: error: 'rt3d.packed_conv3d' op an i8 input comes padded with its zero point (rt3d-quantize-convs): its padding must be 0
func.func @int8_padded_by_the_conv(%x: tensor<1x1x1x2x2x4xi8>) -> tensor<1x4x1x2x3xf32> {
  %w = arith.constant dense<1> : tensor<16xi8>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<8xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, input_layout = "blocked"} : (tensor<1x1x1x2x2x4xi8>, tensor<16xi8>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<8xf32>) -> tensor<1x4x1x2x3xf32>
  return %y : tensor<1x4x1x2x3xf32>
}

// -----

// CHECK: error: 'rt3d.quantize' op result shape (1, 2, 1, 2, 2, 4) does not match the quantized, padded input shape (1, 2, 1, 4, 4, 4)
func.func @quantize_shape(%x: tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 1, 1>, padding_low = array<i64: 0, 1, 1>, scale = 2.500000e-01 : f64, zero_point = 128 : i64} : (tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi8>
  return %q : tensor<1x2x1x2x2x4xi8>
}

// -----

// CHECK: error: 'rt3d.quantize' op zero_point must be one of 0, 128, got 7
func.func @quantize_zero_point(%x: tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, scale = 2.500000e-01 : f64, zero_point = 7 : i64} : (tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi8>
  return %q : tensor<1x2x1x2x2x4xi8>
}

// -----

// CHECK: error: 'rt3d.quantize' op scale must be positive and finite, got -1.0
func.func @quantize_scale(%x: tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, scale = -1.0 : f64, zero_point = 0 : i64} : (tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi8>
  return %q : tensor<1x2x1x2x2x4xi8>
}

// -----

// CHECK: error: 'rt3d.quantize' op input channels (6) must be a multiple of 4
func.func @quantize_channels(%x: tensor<1x6x1x2x2xf32>) -> tensor<1x1x1x2x2x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, scale = 2.500000e-01 : f64, zero_point = 0 : i64} : (tensor<1x6x1x2x2xf32>) -> tensor<1x1x1x2x2x4xi8>
  return %q : tensor<1x1x1x2x2x4xi8>
}

// -----

// CHECK: error: 'rt3d.quantize' op result must have i8 elements, got i32
func.func @quantize_element(%x: tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi32> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, scale = 2.500000e-01 : f64, zero_point = 0 : i64} : (tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x2x2x4xi32>
  return %q : tensor<1x2x1x2x2x4xi32>
}

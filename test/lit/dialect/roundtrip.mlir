// RUN: rt3d-opt %s | rt3d-opt | FileCheck %s

// CHECK-LABEL: func.func @kgs
// CHECK: "rt3d.kgs_conv3d"(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}})
// CHECK-SAME: activation = "relu"
// CHECK-SAME: group_shape = array<i64: 2, 2>
// CHECK-SAME: masks = dense<{{\[\[\[\[\[}}true, false, true]]]], {{\[\[\[\[}}false, false, false]]]]]> : tensor<2x1x1x1x3xi1>
// CHECK-SAME: padding_high = array<i64: 0, 0, 2>
// CHECK-SAME: padding_low = array<i64: 0, 0, 0>
// CHECK-SAME: : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4x4xf32>
func.func @kgs(%x: tensor<1x2x4x4x4xf32>, %w: tensor<4x2x1x1x3xf32>, %b: tensor<4xf32>) -> tensor<1x4x4x4x4xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w, %b) {
    strides = array<i64: 1, 1, 1>, dilations = array<i64: 1, 1, 1>,
    padding_low = array<i64: 0, 0, 0>, padding_high = array<i64: 0, 0, 2>,
    group_shape = array<i64: 2, 2>,
    masks = dense<[[[[[true, false, true]]]], [[[[false, false, false]]]]]> : tensor<2x1x1x1x3xi1>,
    activation = "relu", operandSegmentSizes = array<i32: 1, 1, 1>
  } : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// CHECK-LABEL: func.func @no_bias_strided
// CHECK: "rt3d.kgs_conv3d"(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}) {activation = "none"
// CHECK-SAME: operandSegmentSizes = array<i32: 1, 1, 0>
// CHECK-SAME: strides = array<i64: 2, 1, 2>
func.func @no_bias_strided(%x: tensor<1x3x5x5x5xf32>, %w: tensor<3x3x3x3x3xf32>) -> tensor<1x3x3x4x3xf32> {
  %0 = "rt3d.kgs_conv3d"(%x, %w) {
    strides = array<i64: 2, 1, 2>, dilations = array<i64: 1, 1, 1>,
    padding_low = array<i64: 1, 1, 1>, padding_high = array<i64: 1, 0, 1>,
    group_shape = array<i64: 4, 4>, masks = dense<true> : tensor<1x1x3x3x3xi1>,
    activation = "none", operandSegmentSizes = array<i32: 1, 1, 0>
  } : (tensor<1x3x5x5x5xf32>, tensor<3x3x3x3x3xf32>) -> tensor<1x3x3x4x3xf32>
  return %0 : tensor<1x3x3x4x3xf32>
}

// CHECK-LABEL: func.func @packed
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: block_size = 4 : i64
// CHECK-SAME: channel_unroll = 2 : i64
// CHECK-SAME: loop_order = "dfhw"
// CHECK-SAME: tile_sizes = array<i64: 1, 3>
func.func @packed(%x: tensor<1x2x4x4x4xf32>, %w: tensor<16xf32>, %off: tensor<2xi32>, %starts: tensor<2xi32>, %lanes: tensor<4xi32>, %bias: tensor<4xf32>) -> tensor<1x3x4x4x4xf32> {
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, loop_order = "dfhw", tile_sizes = array<i64: 1, 3>} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// CHECK-LABEL: func.func @quantize
// CHECK: "rt3d.quantize"(%{{.*}}) {padding_high = array<i64: 0, 1, 1>, padding_low = array<i64: 0, 1, 1>, scale = 2.500000e-01 : f64, zero_point = 128 : i64} : (tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x4x4x4xi8>
func.func @quantize(%x: tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x4x4x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 1, 1>, padding_low = array<i64: 0, 1, 1>, scale = 2.500000e-01 : f64, zero_point = 128 : i64} : (tensor<1x8x1x2x2xf32>) -> tensor<1x2x1x4x4x4xi8>
  return %q : tensor<1x2x1x4x4x4xi8>
}

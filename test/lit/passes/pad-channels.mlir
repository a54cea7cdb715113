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

// -----

// int8: the reader reads the importer's int8 quantization of the producer's
// result (four one-use generics, which keep zeros zero): the pair is padded
// through it, the generics now on 16 channels.
// CHECK-LABEL: func.func @quantized
// CHECK: %[[A:.*]] = "rt3d.kgs_conv3d"(%arg0, {{.*}} -> tensor<1x16x2x2x2xf32>
// CHECK: %[[E:.*]] = tensor.empty() : tensor<1x16x2x2x2xf32>
// CHECK: %[[D:.*]] = linalg.generic {{.*}} ins(%[[A]] : tensor<1x16x2x2x2xf32>) outs(%[[E]] : tensor<1x16x2x2x2xf32>)
// CHECK: arith.divf
// CHECK: math.roundeven
// CHECK: arith.select
// CHECK: %[[M:.*]] = linalg.generic {{.*}} outs(%[[E]] : tensor<1x16x2x2x2xf32>)
// CHECK: arith.mulf
// CHECK: "rt3d.kgs_conv3d"(%[[M]], {{.*}} (tensor<1x16x2x2x2xf32>, tensor<8x16x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
func.func @quantized(%arg0: tensor<1x2x2x2x2xf32>) -> tensor<1x8x2x2x2xf32> {
  %w = arith.constant dense<1.0> : tensor<15x2x1x1x1xf32>
  %w2 = arith.constant dense<2.0> : tensor<8x15x1x1x1xf32>
  %a = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<15x2x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x2x2x2xf32>, tensor<15x2x1x1x1xf32>) -> tensor<1x15x2x2x2xf32>
  %s = arith.constant 2.500000e-01 : f64
  %lo = arith.constant -1.270000e+02 : f32
  %hi = arith.constant 1.270000e+02 : f32
  %e = tensor.empty() : tensor<1x15x2x2x2xf32>
  %d = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a : tensor<1x15x2x2x2xf32>) outs(%e : tensor<1x15x2x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %s : f64 to f32
    %v = arith.divf %in, %t : f32
    linalg.yield %v : f32
  } -> tensor<1x15x2x2x2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%d : tensor<1x15x2x2x2xf32>) outs(%e : tensor<1x15x2x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = math.roundeven %in : f32
    linalg.yield %v : f32
  } -> tensor<1x15x2x2x2xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%r : tensor<1x15x2x2x2xf32>) outs(%e : tensor<1x15x2x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b1 = arith.cmpf ult, %in, %lo : f32
    %v1 = arith.select %b1, %lo, %in : f32
    %b2 = arith.cmpf ugt, %v1, %hi : f32
    %v2 = arith.select %b2, %hi, %v1 : f32
    linalg.yield %v2 : f32
  } -> tensor<1x15x2x2x2xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x15x2x2x2xf32>) outs(%e : tensor<1x15x2x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %s : f64 to f32
    %v = arith.mulf %in, %t : f32
    linalg.yield %v : f32
  } -> tensor<1x15x2x2x2xf32>
  %y = "rt3d.kgs_conv3d"(%m, %w2) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<8x15x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x15x2x2x2xf32>, tensor<8x15x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
  return %y : tensor<1x8x2x2x2xf32>
}

// -----

// Another elementwise generic between the two (here: x + 1, which does not
// keep zeros zero) stops the padding.
// CHECK-LABEL: func.func @shifted
// CHECK: tensor<1x15x2x2x2xf32>
// CHECK-NOT: tensor<1x16x2x2x2xf32>
func.func @shifted(%arg0: tensor<1x2x2x2x2xf32>) -> tensor<1x8x2x2x2xf32> {
  %w = arith.constant dense<1.0> : tensor<15x2x1x1x1xf32>
  %w2 = arith.constant dense<2.0> : tensor<8x15x1x1x1xf32>
  %one = arith.constant 1.0 : f32
  %a = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<15x2x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x2x2x2xf32>, tensor<15x2x1x1x1xf32>) -> tensor<1x15x2x2x2xf32>
  %e = tensor.empty() : tensor<1x15x2x2x2xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a : tensor<1x15x2x2x2xf32>) outs(%e : tensor<1x15x2x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = arith.addf %in, %one : f32
    linalg.yield %v : f32
  } -> tensor<1x15x2x2x2xf32>
  %y = "rt3d.kgs_conv3d"(%s, %w2) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<true> : tensor<8x15x1x1x1xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x15x2x2x2xf32>, tensor<8x15x1x1x1xf32>) -> tensor<1x8x2x2x2xf32>
  return %y : tensor<1x8x2x2x2xf32>
}

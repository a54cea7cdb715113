// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-lower-kgs-to-linalg)' | FileCheck %s

// A constant weight is masked at compile time: the kept positions keep their
// values, the removed ones become zero (here 9.0 at kw=1 of filters 0-1,
// and all of filters 2-3).
// CHECK-LABEL: func.func @constant_weight
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[P:.*]] = tensor.pad %{{.*}} low[0, 0, 0, 0, 1] high[0, 0, 0, 0, 1]
// CHECK: tensor.yield %[[ZERO]]
// CHECK: %[[W:.*]] = arith.constant dense<{{\[\[\[\[\[}}1.000000e+00, 0.000000e+00, 2.000000e+00]]], {{\[\[\[}}3.000000e+00, 0.000000e+00, 4.000000e+00]]]], {{\[\[\[\[}}5.000000e+00, 0.000000e+00, 6.000000e+00]]], {{\[\[\[}}7.000000e+00, 0.000000e+00, 8.000000e+00]]]], {{\[\[\[\[}}0.000000e+00, 0.000000e+00, 0.000000e+00]]], {{\[\[\[}}0.000000e+00, 0.000000e+00, 0.000000e+00]]]], {{\[\[\[\[}}0.000000e+00, 0.000000e+00, 0.000000e+00]]], {{\[\[\[}}0.000000e+00, 0.000000e+00, 0.000000e+00]]]]]> : tensor<4x2x1x1x3xf32>
// CHECK: %[[INIT:.*]] = linalg.broadcast ins(%{{.*}} : tensor<4xf32>) outs(%{{.*}} : tensor<1x4x4x4x4xf32>) dimensions = [0, 2, 3, 4]
// CHECK: %[[C:.*]] = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : tensor<3xi64>, strides = dense<1> : tensor<3xi64>} ins(%[[P]], %[[W]] : tensor<1x2x4x4x6xf32>, tensor<4x2x1x1x3xf32>) outs(%[[INIT]] : tensor<1x4x4x4x4xf32>)
// CHECK: %[[R:.*]] = linalg.generic
// CHECK-SAME: ins(%[[C]] : tensor<1x4x4x4x4xf32>)
// CHECK: arith.maximumf %{{.*}}, %[[ZERO]] : f32
// CHECK: return %[[R]]
// CHECK: #[[MASKMAP:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0 floordiv 2, d1 floordiv 2, d2, d3, d4)>
func.func @constant_weight(%arg0: tensor<1x2x4x4x4xf32>) -> tensor<1x4x4x4x4xf32> {
  %w = arith.constant dense<[[[[[1.0, 9.0, 2.0]]], [[[3.0, 9.0, 4.0]]]], [[[[5.0, 9.0, 6.0]]], [[[7.0, 9.0, 8.0]]]], [[[[9.0, 9.0, 9.0]]], [[[9.0, 9.0, 9.0]]]], [[[[9.0, 9.0, 9.0]]], [[[9.0, 9.0, 9.0]]]]]> : tensor<4x2x1x1x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w, %b) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 2, 2>, masks = dense<[[[[[true, false, true]]]], [[[[false, false, false]]]]]> : tensor<2x1x1x1x3xi1>, operandSegmentSizes = array<i32: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x4x4x4xf32>, tensor<4x2x1x1x3xf32>, tensor<4xf32>) -> tensor<1x4x4x4x4xf32>
  return %0 : tensor<1x4x4x4x4xf32>
}

// -----

// A weight that is not constant is masked at run time with a select against
// the group mask, indexed through floordiv by the group shape. No bias: a
// zero fill; no padding: no tensor.pad; no activation: no ReLU.
// CHECK-LABEL: func.func @argument_weight
// CHECK-SAME: (%[[X:.*]]: tensor<1x3x4x4x4xf32>, %[[W:.*]]: tensor<3x3x1x1x2xf32>)
// CHECK-NOT: tensor.pad
// CHECK: %[[MASK:.*]] = arith.constant dense<{{.*}}> : tensor<2x2x1x1x2xi1>
// CHECK: %[[MW:.*]] = linalg.generic {indexing_maps = [#{{.*}}, #[[MASKMAP]], #{{.*}}]
// CHECK-SAME: ins(%[[W]], %[[MASK]] : tensor<3x3x1x1x2xf32>, tensor<2x2x1x1x2xi1>)
// CHECK: arith.select
// CHECK: %[[INIT:.*]] = linalg.fill
// CHECK: %[[C:.*]] = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : tensor<3xi64>, strides = dense<[1, 2, 2]> : tensor<3xi64>} ins(%[[X]], %[[MW]] : {{.*}}) outs(%[[INIT]] : tensor<1x3x4x2x2xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[C]]
func.func @argument_weight(%arg0: tensor<1x3x4x4x4xf32>, %w: tensor<3x3x1x1x2xf32>) -> tensor<1x3x4x2x2xf32> {
  %0 = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 2, 2>, masks = dense<[[[[[true, false]]], [[[true, true]]]], [[[[false, false]]], [[[false, true]]]]]> : tensor<2x2x1x1x2xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 2, 2>} : (tensor<1x3x4x4x4xf32>, tensor<3x3x1x1x2xf32>) -> tensor<1x3x4x2x2xf32>
  return %0 : tensor<1x3x4x2x2xf32>
}

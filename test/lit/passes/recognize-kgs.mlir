// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-recognize-kgs{group-shape=2x2})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-recognize-kgs)' | FileCheck %s --check-prefix=AUTO
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-recognize-kgs{group-shape=2x2 widen-to=16x16})' | FileCheck %s --check-prefix=WIDE

#map = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>

// The pad, bias broadcast, conv and ReLU that torch-mlir emits for
// Conv3d(2, 4, (1, 1, 3), padding=(0, 0, 1)) + ReLU fold into one op. Filters
// 0-1 have kw=1 pruned; filters 2-3 are pruned whole (a vanilla group).
// CHECK-LABEL: func.func @conv_bias_relu
// CHECK-SAME: (%[[X:.*]]: tensor<1x2x4x4x4xf32>)
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{.*}}> : tensor<4x2x1x1x3xf32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32>
// CHECK-NOT: tensor.pad
// CHECK-NOT: linalg.
// CHECK: %[[Y:.*]] = "rt3d.kgs_conv3d"(%[[X]], %[[W]], %[[B]])
// CHECK-SAME: activation = "relu"
// CHECK-SAME: group_shape = array<i64: 2, 2>
// CHECK-SAME: masks = dense<{{\[\[\[\[\[}}true, false, true]]]], {{\[\[\[\[}}false, false, false]]]]]> : tensor<2x1x1x1x3xi1>
// CHECK-SAME: padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>
// CHECK-NOT: linalg.
// CHECK: return %[[Y]]
// widen-to (bf16 builds on AMX): the 2x2 groups become one group of all 4 filters and both
// channels (16x16 clipped to the weight), kept where any of its kernels is.
// WIDE-LABEL: func.func @conv_bias_relu
// WIDE: group_shape = array<i64: 4, 2>, masks = dense<{{\[\[\[\[\[}}true, false, true]]]]]> : tensor<1x1x1x1x3xi1>
// AUTO-LABEL: func.func @conv_bias_relu
// AUTO: group_shape = array<i64: 2, 2>
func.func @conv_bias_relu(%arg0: tensor<1x2x4x4x4xf32>) -> tensor<1x4x4x4x4xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[[1.0, 0.0, 2.0]]], [[[3.0, 0.0, 4.0]]]], [[[[5.0, 0.0, 6.0]]], [[[7.0, 0.0, 8.0]]]], [[[[0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0]]]], [[[[0.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0]]]]]> : tensor<4x2x1x1x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %padded = tensor.pad %arg0 low[0, 0, 0, 0, 1] high[0, 0, 0, 0, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index, %i4: index):
    tensor.yield %cst : f32
  } : tensor<1x2x4x4x4xf32> to tensor<1x2x4x4x6xf32>
  %0 = tensor.empty() : tensor<1x4x4x4x4xf32>
  %bc = linalg.broadcast ins(%b : tensor<4xf32>) outs(%0 : tensor<1x4x4x4x4xf32>) dimensions = [0, 2, 3, 4]
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%padded, %w : tensor<1x2x4x4x6xf32>, tensor<4x2x1x1x3xf32>) outs(%bc : tensor<1x4x4x4x4xf32>) -> tensor<1x4x4x4x4xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x4x4x4x4xf32>) outs(%0 : tensor<1x4x4x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %3 = arith.cmpf ugt, %in, %cst : f32
    %4 = arith.select %3, %in, %cst : f32
    linalg.yield %4 : f32
  } -> tensor<1x4x4x4x4xf32>
  return %2 : tensor<1x4x4x4x4xf32>
}

// -----

#map = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>

// A zero-filled init (no bias), stride 2 and dilation 2, no padding; the
// conv result has two users, so the ReLU is not fused.
// CHECK-LABEL: func.func @no_bias_two_users
// CHECK: %[[Y:.*]] = "rt3d.kgs_conv3d"(%{{.*}}, %{{.*}}) {activation = "none", dilations = array<i64: 2, 2, 2>
// CHECK-SAME: operandSegmentSizes = array<i32: 1, 1, 0>
// CHECK-SAME: strides = array<i64: 2, 2, 2>
// CHECK: linalg.generic
// CHECK: return %[[Y]], %{{.*}}
func.func @no_bias_two_users(%arg0: tensor<1x1x5x5x5xf32>) -> (tensor<1x2x1x1x1xf32>, tensor<1x2x1x1x1xf32>) {
  %cst = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<1.0> : tensor<2x1x3x3x3xf32>
  %0 = tensor.empty() : tensor<1x2x1x1x1xf32>
  %fill = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<2> : vector<3xi64>, strides = dense<2> : vector<3xi64>} ins(%arg0, %w : tensor<1x1x5x5x5xf32>, tensor<2x1x3x3x3xf32>) outs(%fill : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x2x1x1x1xf32>) outs(%0 : tensor<1x2x1x1x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %3 = arith.maximumf %in, %cst : f32
    linalg.yield %3 : f32
  } -> tensor<1x2x1x1x1xf32>
  return %1, %2 : tensor<1x2x1x1x1xf32>, tensor<1x2x1x1x1xf32>
}

// -----

#map = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>

// SiLU as torch-mlir writes it: a sigmoid generic of the conv and the product
// of the conv and the sigmoid. Both fuse into the conv (activation "silu").
// CHECK-LABEL: func.func @conv_silu
// CHECK: %[[Y:.*]] = "rt3d.kgs_conv3d"
// CHECK-SAME: activation = "silu"
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
func.func @conv_silu(%arg0: tensor<1x1x3x3x3xf32>) -> tensor<1x2x1x1x1xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %one = arith.constant 1.000000e+00 : f32
  %w = arith.constant dense<1.0> : tensor<2x1x3x3x3xf32>
  %0 = tensor.empty() : tensor<1x2x1x1x1xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%0 : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%arg0, %w : tensor<1x1x3x3x3xf32>, tensor<2x1x3x3x3xf32>) outs(%fill : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x2x1x1x1xf32>) outs(%0 : tensor<1x2x1x1x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %s = arith.divf %one, %d : f32
    linalg.yield %s : f32
  } -> tensor<1x2x1x1x1xf32>
  %3 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1, %2 : tensor<1x2x1x1x1xf32>, tensor<1x2x1x1x1xf32>) outs(%0 : tensor<1x2x1x1x1xf32>) {
  ^bb0(%in: f32, %g: f32, %out: f32):
    %p = arith.mulf %in, %g : f32
    linalg.yield %p : f32
  } -> tensor<1x2x1x1x1xf32>
  return %3 : tensor<1x2x1x1x1xf32>
}

// -----

#map = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>

// A sigmoid alone fuses too; a sigmoid whose result is also returned (two
// users of the gate) does not make a SiLU: the conv keeps no activation.
// CHECK-LABEL: func.func @conv_sigmoid
// CHECK: "rt3d.kgs_conv3d"
// CHECK-SAME: activation = "sigmoid"
// CHECK-LABEL: func.func @gate_read_twice
// CHECK: "rt3d.kgs_conv3d"
// CHECK-SAME: activation = "none"
// CHECK-COUNT-2: linalg.generic
func.func @conv_sigmoid(%arg0: tensor<1x1x3x3x3xf32>) -> tensor<1x2x1x1x1xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %one = arith.constant 1.000000e+00 : f32
  %w = arith.constant dense<1.0> : tensor<2x1x3x3x3xf32>
  %0 = tensor.empty() : tensor<1x2x1x1x1xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%0 : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%arg0, %w : tensor<1x1x3x3x3xf32>, tensor<2x1x3x3x3xf32>) outs(%fill : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x2x1x1x1xf32>) outs(%0 : tensor<1x2x1x1x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %s = arith.divf %one, %d : f32
    linalg.yield %s : f32
  } -> tensor<1x2x1x1x1xf32>
  return %2 : tensor<1x2x1x1x1xf32>
}
func.func @gate_read_twice(%arg0: tensor<1x1x3x3x3xf32>) -> (tensor<1x2x1x1x1xf32>, tensor<1x2x1x1x1xf32>) {
  %zero = arith.constant 0.000000e+00 : f32
  %one = arith.constant 1.000000e+00 : f32
  %w = arith.constant dense<1.0> : tensor<2x1x3x3x3xf32>
  %0 = tensor.empty() : tensor<1x2x1x1x1xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%0 : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%arg0, %w : tensor<1x1x3x3x3xf32>, tensor<2x1x3x3x3xf32>) outs(%fill : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %2 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1 : tensor<1x2x1x1x1xf32>) outs(%0 : tensor<1x2x1x1x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %s = arith.divf %one, %d : f32
    linalg.yield %s : f32
  } -> tensor<1x2x1x1x1xf32>
  %3 = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%1, %2 : tensor<1x2x1x1x1xf32>, tensor<1x2x1x1x1xf32>) outs(%0 : tensor<1x2x1x1x1xf32>) {
  ^bb0(%in: f32, %g: f32, %out: f32):
    %p = arith.mulf %in, %g : f32
    linalg.yield %p : f32
  } -> tensor<1x2x1x1x1xf32>
  return %2, %3 : tensor<1x2x1x1x1xf32>, tensor<1x2x1x1x1xf32>
}

// -----

#map = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>

// A weight that is a function argument is not constant: left alone.
// CHECK-LABEL: func.func @dynamic_weight
// CHECK-NOT: rt3d.kgs_conv3d
// CHECK: linalg.conv_3d_ncdhw_fcdhw
func.func @dynamic_weight(%arg0: tensor<1x1x3x3x3xf32>, %w: tensor<1x1x3x3x3xf32>) -> tensor<1x1x1x1x1xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %0 = tensor.empty() : tensor<1x1x1x1x1xf32>
  %fill = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x1x1x1x1xf32>) -> tensor<1x1x1x1x1xf32>
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%arg0, %w : tensor<1x1x3x3x3xf32>, tensor<1x1x3x3x3xf32>) outs(%fill : tensor<1x1x1x1x1xf32>) -> tensor<1x1x1x1x1xf32>
  return %1 : tensor<1x1x1x1x1xf32>
}

// -----

// A diagonal weight (a depthwise conv made ordinary) keeps its 1x1 groups under widen-to: a wider
// group would multiply by its zeros.
// WIDE-LABEL: func.func @diagonal
// WIDE: group_shape = array<i64: 1, 1>
func.func @diagonal(%arg0: tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32> {
  %cst = arith.constant 0.000000e+00 : f32
  %w = arith.constant dense<[[[[[1.0]]], [[[0.0]]]], [[[[0.0]]], [[[2.0]]]]]> : tensor<2x2x1x1x1xf32>
  %0 = tensor.empty() : tensor<1x2x1x1x1xf32>
  %fill = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  %1 = linalg.conv_3d_ncdhw_fcdhw {dilations = dense<1> : vector<3xi64>, strides = dense<1> : vector<3xi64>} ins(%arg0, %w : tensor<1x2x1x1x1xf32>, tensor<2x2x1x1x1xf32>) outs(%fill : tensor<1x2x1x1x1xf32>) -> tensor<1x2x1x1x1xf32>
  return %1 : tensor<1x2x1x1x1xf32>
}

// -----

// A Linear layer whose weight lost whole columns (inputs 1, 3 and 4 of all
// four outputs: block-based pruning's 4 x 1 groups) becomes the 1x1x1 conv
// of its input seen as (N, K, 1, 1, 1); the weight's zeros fit no 2x2 groups,
// so 4x1 ones are chosen, whatever the requested shape.
// CHECK-LABEL: func.func @sparse_linear
// CHECK-NOT: linalg.matmul
// CHECK: %[[X:.*]] = tensor.expand_shape %arg0 {{\[\[}}0], [1, 2, 3, 4]] output_shape [1, 6, 1, 1, 1] : tensor<1x6xf32> into tensor<1x6x1x1x1xf32>
// CHECK: %[[Y:.*]] = "rt3d.kgs_conv3d"(%[[X]], %{{[a-z0-9_]+}})
// CHECK-SAME: group_shape = array<i64: 4, 1>
// CHECK-SAME: -> tensor<1x4x1x1x1xf32>
// CHECK: tensor.collapse_shape %[[Y]] {{\[\[}}0], [1, 2, 3, 4]] : tensor<1x4x1x1x1xf32> into tensor<1x4xf32>
// AUTO-LABEL: func.func @sparse_linear
// AUTO: group_shape = array<i64: 4, 1>
// WIDE-LABEL: func.func @sparse_linear
// WIDE: group_shape = array<i64: 4, 1>
func.func @sparse_linear(%x: tensor<1x6xf32>) -> tensor<1x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 0.0, 2.0, 0.0, 0.0, 3.0], [4.0, 0.0, 5.0, 0.0, 0.0, 6.0], [7.0, 0.0, 8.0, 0.0, 0.0, 9.0], [1.5, 0.0, 2.5, 0.0, 0.0, 3.5]]> : tensor<4x6xf32>
  %e = tensor.empty() : tensor<6x4xf32>
  %t = linalg.transpose ins(%w : tensor<4x6xf32>) outs(%e : tensor<6x4xf32>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<1x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x4xf32>) -> tensor<1x4xf32>
  %y = linalg.matmul ins(%x, %t : tensor<1x6xf32>, tensor<6x4xf32>) outs(%init : tensor<1x4xf32>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

// -----

// A dense Linear layer stays a matmul (rt3d-vectorize-matmul streams it).
// CHECK-LABEL: func.func @dense_linear
// CHECK: linalg.matmul
// CHECK-NOT: rt3d.kgs_conv3d
func.func @dense_linear(%x: tensor<1x2xf32>) -> tensor<1x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]> : tensor<4x2xf32>
  %e = tensor.empty() : tensor<2x4xf32>
  %t = linalg.transpose ins(%w : tensor<4x2xf32>) outs(%e : tensor<2x4xf32>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<1x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x4xf32>) -> tensor<1x4xf32>
  %y = linalg.matmul ins(%x, %t : tensor<1x2xf32>, tensor<2x4xf32>) outs(%init : tensor<1x4xf32>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

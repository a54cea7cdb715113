// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-depthwise{vector-width=4}, canonicalize, cse)' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-depthwise{vector-width=4 tile-rows=1 tile-vectors=1}, canonicalize, cse)' | FileCheck %s --check-prefix=SMALL

// A depthwise conv with channel multiplier 2 (filters 2c and 2c+1 read
// channel c), 3x3x3, padding 1, ReLU; kernel row kh=0 is pruned for every
// filter. The kernel reads the unpadded input (no tensor.pad): one task per
// (filter, output depth), 4 x 3 = 12; the filter's channel is f / 2; the
// depth taps whose input plane exists run from max(1 - d, 0) to
// min(4 - d, 3). The 4x6 output plane is one tile of 4 rows x 2 vectors
// (8 accumulators starting at the bias). Per depth tap, the 6 kept weights
// (kh = 1, 2) are loaded, and each input row feeds the output rows that use
// it: 4 rows x 2 vectors x 6 taps = 48 FMAs, less the 6 that would read the
// padding row below the plane. Column -1 (padding) is a zero lane shuffled
// in; the row's last two columns are a masked load. Outputs: ReLU, a full
// and a masked store per row. FLOPs: kept weights (72 of 108).
// CHECK-LABEL: func.func @depthwise
// CHECK-NOT: tensor.pad
// CHECK: call @rt3d_dwconv_dispatch_0(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (memref<144xf32>, memref<108xf32>, memref<4xf32>, memref<288xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_dwconv_kernel_0(
// CHECK-SAME: %[[IN:[a-z0-9]+]]: memref<144xf32>, %[[W:[a-z0-9]+]]: memref<108xf32>, %[[B:[a-z0-9]+]]: memref<4xf32>, %[[OUT:[a-z0-9]+]]: memref<288xf32>
// CHECK-SAME: rt3d.parallel_tasks = 12 : i64
// CHECK-DAG: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<4xf32>
// CHECK: scf.for %[[TASK:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[PLANE:.*]] = arith.divui %[[TASK]], %c3
// CHECK: %[[F:.*]] = arith.remui %[[PLANE]], %c4
// CHECK: arith.divui %[[F]], %c2
// CHECK: %[[BIAS:.*]] = memref.load %[[B]][%[[F]]]
// CHECK: %[[BV:.*]] = vector.broadcast %[[BIAS]]
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: %{{.*}}:8 = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1 iter_args(%{{.*}} = %[[BV]], {{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>)
// CHECK: vector.maskedload %[[IN]]
// CHECK: vector.shuffle %{{.*}}, %[[ZERO]] [4, 0, 1, 2]
// CHECK-COUNT-42: vector.fma
// CHECK-NOT: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-4: arith.maximumf
// CHECK-NOT: tensor.pad
// CHECK: func.func private @rt3d_dwconv_dispatch_0({{.*}}rt3d.dense_flops = 15552 : i64, rt3d.flops = 10368 : i64, rt3d.kernel = "rt3d_dwconv_kernel_0"
// With 1x1 tiles: one accumulator per tile, the inner rows a loop.
// SMALL-LABEL: func.func @rt3d_dwconv_kernel_0(
// SMALL: scf.for %{{.*}} = %{{.*}} iter_args(%{{.*}}) -> (vector<4xf32>)
// SMALL: scf.for %{{.*}} = %c1 to %c3 step %c1 {
func.func @depthwise(%arg0: tensor<1x2x3x4x6xf32>) -> tensor<1x4x3x4x6xf32> {
  %w = arith.constant dense<[[[[[0.0, 0.0, 0.0],
    [1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0]],

   [[0.0, 0.0, 0.0],
    [1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0]],

   [[0.0, 0.0, 0.0],
    [1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0]]],


  [[[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]]]],



 [[[[0.0, 0.0, 0.0],
    [2.0, 2.0, 2.0],
    [2.0, 2.0, 2.0]],

   [[0.0, 0.0, 0.0],
    [2.0, 2.0, 2.0],
    [2.0, 2.0, 2.0]],

   [[0.0, 0.0, 0.0],
    [2.0, 2.0, 2.0],
    [2.0, 2.0, 2.0]]],


  [[[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]]]],



 [[[[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]]],


  [[[0.0, 0.0, 0.0],
    [3.0, 3.0, 3.0],
    [3.0, 3.0, 3.0]],

   [[0.0, 0.0, 0.0],
    [3.0, 3.0, 3.0],
    [3.0, 3.0, 3.0]],

   [[0.0, 0.0, 0.0],
    [3.0, 3.0, 3.0],
    [3.0, 3.0, 3.0]]]],



 [[[[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]],

   [[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]]],


  [[[0.0, 0.0, 0.0],
    [4.0, 4.0, 4.0],
    [4.0, 4.0, 4.0]],

   [[0.0, 0.0, 0.0],
    [4.0, 4.0, 4.0],
    [4.0, 4.0, 4.0]],

   [[0.0, 0.0, 0.0],
    [4.0, 4.0, 4.0],
    [4.0, 4.0, 4.0]]]]]> : tensor<4x2x3x3x3xf32>
  %b = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w, %b) {activation = "relu", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<[[[[[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]]],


  [[[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]]]],



 [[[[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]]],


  [[[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]]]],



 [[[[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]]],


  [[[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]]]],



 [[[[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]],

   [[false, false, false],
    [false, false, false],
    [false, false, false]]],


  [[[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]],

   [[false, false, false],
    [ true,  true,  true],
    [ true,  true,  true]]]]]> : tensor<4x2x3x3x3xi1>, operandSegmentSizes = array<i32: 1, 1, 1>, padding_high = array<i64: 1, 1, 1>, padding_low = array<i64: 1, 1, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x3x4x6xf32>, tensor<4x2x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x3x4x6xf32>
  return %0 : tensor<1x4x3x4x6xf32>
}

// -----

// W stride 2 (1x3x3, padding 1, no bias: zeros), a 14x56 plane: output
// 14x28 in tiles of 4 rows x 8 columns. Tiles away from the padding are
// loops (rows 4-11, columns 8-23) with plain loads: two vectors per input
// row and kernel column, every second element kept by a shuffle.
// CHECK-LABEL: func.func @rt3d_dwconv_kernel_0(
// CHECK-SAME: rt3d.parallel_tasks = 2 : i64
// CHECK: scf.for %[[COL:.*]] = %c8 to %c24 step %c8 {
// CHECK: %[[A:.*]] = vector.load
// CHECK: %[[B:.*]] = vector.load
// CHECK: %[[AB:.*]] = vector.shuffle %[[A]], %[[B]] [0, 1, 2, 3, 4, 5, 6, 7] : vector<4xf32>, vector<4xf32>
// CHECK: vector.shuffle %[[AB]], %{{.*}} [0, 2, 4, 6] : vector<8xf32>, vector<8xf32>
// CHECK: scf.for %{{.*}} = %c4 to %c12 step %c4 {
// CHECK: scf.for %{{.*}} = %c8 to %c24 step %c8 {

func.func @stride_two(%arg0: tensor<1x2x1x14x56xf32>) -> tensor<1x2x1x14x28xf32> {
  %w = arith.constant dense<[[[[[1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0]]],


  [[[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]]]],



 [[[[0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0]]],


  [[[1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0],
    [1.0, 1.0, 1.0]]]]]> : tensor<2x2x1x3x3xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<[[[[[ true,  true,  true],
    [ true,  true,  true],
    [ true,  true,  true]]],


  [[[false, false, false],
    [false, false, false],
    [false, false, false]]]],



 [[[[false, false, false],
    [false, false, false],
    [false, false, false]]],


  [[[ true,  true,  true],
    [ true,  true,  true],
    [ true,  true,  true]]]]]> : tensor<2x2x1x3x3xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 1, 1>, padding_low = array<i64: 0, 1, 1>, strides = array<i64: 1, 1, 2>} : (tensor<1x2x1x14x56xf32>, tensor<2x2x1x3x3xf32>) -> tensor<1x2x1x14x28xf32>
  return %0 : tensor<1x2x1x14x28xf32>
}

// -----

// Two input channels per group: not depthwise, left for rt3d-pack-kernel-groups.
// CHECK-LABEL: func.func @grouped
// CHECK: rt3d.kgs_conv3d

func.func @grouped(%arg0: tensor<1x4x1x1x5xf32>) -> tensor<1x2x1x1x3xf32> {
  %w = arith.constant dense<[[[[[1.0, 1.0, 1.0]]],


  [[[1.0, 1.0, 1.0]]],


  [[[0.0, 0.0, 0.0]]],


  [[[0.0, 0.0, 0.0]]]],



 [[[[0.0, 0.0, 0.0]]],


  [[[0.0, 0.0, 0.0]]],


  [[[1.0, 1.0, 1.0]]],


  [[[1.0, 1.0, 1.0]]]]]> : tensor<2x4x1x1x3xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "none", dilations = array<i64: 1, 1, 1>, group_shape = array<i64: 1, 1>, masks = dense<[[[[[ true,  true,  true]]],


  [[[ true,  true,  true]]],


  [[[false, false, false]]],


  [[[false, false, false]]]],



 [[[[false, false, false]]],


  [[[false, false, false]]],


  [[[ true,  true,  true]]],


  [[[ true,  true,  true]]]]]> : tensor<2x4x1x1x3xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x1x1x5xf32>, tensor<2x4x1x1x3xf32>) -> tensor<1x2x1x1x3xf32>
  return %0 : tensor<1x2x1x1x3xf32>
}

// -----

// A dilated depthwise conv is left for the general kernel too.
// CHECK-LABEL: func.func @dilated
// CHECK: rt3d.kgs_conv3d

func.func @dilated(%arg0: tensor<1x2x1x1x5xf32>) -> tensor<1x2x1x1x1xf32> {
  %w = arith.constant dense<[[[[[1.0, 1.0, 1.0]]],


  [[[0.0, 0.0, 0.0]]]],



 [[[[0.0, 0.0, 0.0]]],


  [[[1.0, 1.0, 1.0]]]]]> : tensor<2x2x1x1x3xf32>
  %0 = "rt3d.kgs_conv3d"(%arg0, %w) {activation = "none", dilations = array<i64: 1, 1, 2>, group_shape = array<i64: 1, 1>, masks = dense<[[[[[ true,  true,  true]]],


  [[[false, false, false]]]],



 [[[[false, false, false]]],


  [[[ true,  true,  true]]]]]> : tensor<2x2x1x1x3xi1>, operandSegmentSizes = array<i32: 1, 1, 0>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x2x1x1x5xf32>, tensor<2x2x1x1x3xf32>) -> tensor<1x2x1x1x1xf32>
  return %0 : tensor<1x2x1x1x1xf32>
}

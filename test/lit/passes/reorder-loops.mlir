// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{accumulators=14})' | FileCheck %s
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{tile-rows=2 tile-cols=2 loop-order=dfhw})' | FileCheck %s --check-prefix=USER
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{loop-order=hwdf})' 2>&1 | FileCheck %s --check-prefix=BAD

// W = 20 >= 14 accumulators: a 1 x 10 tile covers each row exactly
// (better than 14 + a 6-wide tail). W = 4: 3 rows of 4 fill 12 registers.
// The packed weights are small, so filter blocks go outermost.
// CHECK-LABEL: func.func @tiles
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: loop_order = "fdhw"
// CHECK-SAME: tile_sizes = array<i64: 1, 10>
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: loop_order = "fdhw"
// CHECK-SAME: tile_sizes = array<i64: 3, 4>
// USER: loop_order = "dfhw"
// USER-SAME: tile_sizes = array<i64: 2, 2>
// USER: loop_order = "dfhw"
// USER-SAME: tile_sizes = array<i64: 2, 2>
// BAD: error: rt3d-reorder-loops: loop-order must be one of fdhw, dfhw, dhfw, got 'hwdf'
func.func @tiles(%x: tensor<1x1x1x20x20xf32>, %y: tensor<1x1x1x4x4xf32>) -> (tensor<1x2x1x20x20xf32>, tensor<1x2x1x4x4xf32>) {
  %w = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1]> : tensor<2xi32>
  %bias = arith.constant dense<0.0> : tensor<2xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x1x20x20xf32>, tensor<2xf32>, tensor<1xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x1x20x20xf32>
  %1 = "rt3d.packed_conv3d"(%y, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x1x4x4xf32>, tensor<2xf32>, tensor<1xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x1x4x4xf32>
  return %0, %1 : tensor<1x2x1x20x20xf32>, tensor<1x2x1x4x4xf32>
}

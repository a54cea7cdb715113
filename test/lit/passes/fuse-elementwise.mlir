// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-fuse-elementwise)' | FileCheck %s

// A squeeze-excitation gate and SiLU: x * sigmoid(g) broadcast, then
// sigmoid and multiply. The three full-size generics become one that reads
// x and the gate once; the gate's own sigmoid (read through a broadcast
// map) stays apart, so it is not recomputed per element.
// CHECK-LABEL: func.func @gate_silu
// CHECK: %[[GATE:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<1x4x1x1x1xf32>)
// CHECK: math.exp
// CHECK: %[[OUT:.*]] = linalg.generic {indexing_maps = [#map, #map1, #map]
// CHECK-SAME: ins(%arg0, %[[GATE]] : tensor<1x4x2x3x5xf32>, tensor<1x4x1x1x1xf32>)
// CHECK: arith.mulf
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: arith.mulf
// CHECK: linalg.yield
// CHECK-NOT: linalg.generic
// CHECK: return %[[OUT]]
#id = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#bc = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, 0, 0, 0)>
func.func @gate_silu(%arg0: tensor<1x4x2x3x5xf32>, %arg1: tensor<1x4x1x1x1xf32>) -> tensor<1x4x2x3x5xf32> {
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<1x4x2x3x5xf32>
  %eg = tensor.empty() : tensor<1x4x1x1x1xf32>
  %g = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%arg1 : tensor<1x4x1x1x1xf32>) outs(%eg : tensor<1x4x1x1x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    %x = math.exp %n : f32
    %d = arith.addf %x, %one : f32
    %s = arith.divf %one, %d : f32
    linalg.yield %s : f32
  } -> tensor<1x4x1x1x1xf32>
  %0 = linalg.generic {indexing_maps = [#id, #bc, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%arg0, %g : tensor<1x4x2x3x5xf32>, tensor<1x4x1x1x1xf32>) outs(%e : tensor<1x4x2x3x5xf32>) {
  ^bb0(%in: f32, %in_1: f32, %out: f32):
    %m = arith.mulf %in, %in_1 : f32
    linalg.yield %m : f32
  } -> tensor<1x4x2x3x5xf32>
  %1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%0 : tensor<1x4x2x3x5xf32>) outs(%e : tensor<1x4x2x3x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %n = arith.negf %in : f32
    %x = math.exp %n : f32
    %d = arith.addf %x, %one : f32
    %s = arith.divf %one, %d : f32
    linalg.yield %s : f32
  } -> tensor<1x4x2x3x5xf32>
  %2 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%0, %1 : tensor<1x4x2x3x5xf32>, tensor<1x4x2x3x5xf32>) outs(%e : tensor<1x4x2x3x5xf32>) {
  ^bb0(%in: f32, %in_1: f32, %out: f32):
    %m = arith.mulf %in, %in_1 : f32
    linalg.yield %m : f32
  } -> tensor<1x4x2x3x5xf32>
  return %2 : tensor<1x4x2x3x5xf32>
}

// -----

// A residual add then ReLU: one generic; a producer whose result is also
// returned (a second use) is not merged.
// CHECK-LABEL: func.func @add_relu
// CHECK: linalg.generic
// CHECK: arith.addf
// CHECK: arith.maximumf
// CHECK-NOT: linalg.generic
// CHECK-LABEL: func.func @two_uses
// CHECK: linalg.generic
// CHECK: arith.addf
// CHECK: linalg.generic
// CHECK: arith.maximumf
#id2 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
func.func @add_relu(%a: tensor<1x2x2x2x2xf32>, %b: tensor<1x2x2x2x2xf32>) -> tensor<1x2x2x2x2xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x2x2x2xf32>
  %0 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a, %b : tensor<1x2x2x2x2xf32>, tensor<1x2x2x2x2xf32>) outs(%e : tensor<1x2x2x2x2xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<1x2x2x2x2xf32>
  %1 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%0 : tensor<1x2x2x2x2xf32>) outs(%e : tensor<1x2x2x2x2xf32>) {
  ^bb0(%x: f32, %out: f32):
    %r = arith.maximumf %x, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x2x2x2x2xf32>
  return %1 : tensor<1x2x2x2x2xf32>
}
func.func @two_uses(%a: tensor<1x2x2x2x2xf32>, %b: tensor<1x2x2x2x2xf32>) -> (tensor<1x2x2x2x2xf32>, tensor<1x2x2x2x2xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2x2x2x2xf32>
  %0 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a, %b : tensor<1x2x2x2x2xf32>, tensor<1x2x2x2x2xf32>) outs(%e : tensor<1x2x2x2x2xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<1x2x2x2x2xf32>
  %1 = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%0 : tensor<1x2x2x2x2xf32>) outs(%e : tensor<1x2x2x2x2xf32>) {
  ^bb0(%x: f32, %out: f32):
    %r = arith.maximumf %x, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x2x2x2x2xf32>
  return %0, %1 : tensor<1x2x2x2x2xf32>, tensor<1x2x2x2x2xf32>
}

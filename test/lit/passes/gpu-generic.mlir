// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-gpu-generic)' | FileCheck %s

// An elementwise generic: one invocation per element, the body re-emitted
// on loads through the indexing maps; outside constants become kernel
// constants.
// CHECK-LABEL: func.func @add_relu
// CHECK: %[[Y:.*]] = call @rt3d_gpu_dispatch_0(%arg0, %arg1) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK: return %[[Y]]
// CHECK: gpu.func @rt3d_generic_0(%arg0: memref<32xf32>, %arg1: memref<32xf32>, %arg2: memref<32xf32>) kernel
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[X:.*]] = memref.load %arg0
// CHECK: %[[Z:.*]] = memref.load %arg1
// CHECK: %[[S:.*]] = arith.addf %[[X]], %[[Z]] : f32
// CHECK: %[[R:.*]] = arith.maximumf %[[S]], %[[ZERO]] : f32
// CHECK: memref.store %[[R]], %arg2
// CHECK: rt3d.label = "generic"
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @add_relu(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %0 = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%a, %b : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    %r = arith.maximumf %s, %zero : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// A reduction (a max over the last dimension) whose initial value is a
// fill: the fill gets no dispatch, its value (-inf) starts the loop.
// CHECK-LABEL: func.func @row_max
// CHECK-NOT: linalg.generic
// CHECK: %[[Y:.*]] = call @rt3d_gpu_dispatch_0(%arg0) : (tensor<4x8xf32>) -> tensor<4xf32>
// CHECK: gpu.func @rt3d_generic_0(%arg0: memref<32xf32>, %arg1: memref<4xf32>) kernel
// CHECK: %[[INIT:.*]] = arith.constant 0xFF800000 : f32
// CHECK: scf.for %{{.*}} = %{{.*}} to %c8 step %c1 iter_args(%{{.*}} = %[[INIT]]) -> (f32)
// CHECK: arith.maximumf
// CHECK: scf.yield
// CHECK-NOT: rt3d_generic_1
#in = affine_map<(d0, d1) -> (d0, d1)>
#out = affine_map<(d0, d1) -> (d0)>
#s = affine_map<(d0) -> ()>
#v = affine_map<(d0) -> (d0)>
func.func @row_max(%a: tensor<4x8xf32>) -> tensor<4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %e = tensor.empty() : tensor<4xf32>
  %fill = linalg.generic {indexing_maps = [#s, #v], iterator_types = ["parallel"]} ins(%ninf : f32) outs(%e : tensor<4xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<4xf32>
  %0 = linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel", "reduction"]} ins(%a : tensor<4x8xf32>) outs(%fill : tensor<4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %o : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// A transpose of a constant is folded into a new constant (no dispatch); a
// fill that is read whole (returned here) is written by a fill kernel.
// CHECK-LABEL: func.func @folds
// CHECK-DAG: %[[T:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 3.000000e+00], [2.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>
// CHECK-DAG: %[[F:.*]] = call @rt3d_gpu_dispatch_0() : () -> tensor<3xf32>
// CHECK: return %[[T]], %[[F]]
// CHECK: gpu.func @rt3d_fill_0(%arg0: memref<3xf32>) kernel
// CHECK: %[[HALF:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: memref.store %[[HALF]], %arg0
// CHECK: rt3d.label = "fill"
#id2 = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
#sc = affine_map<(d0) -> ()>
#ve = affine_map<(d0) -> (d0)>
func.func @folds() -> (tensor<2x2xf32>, tensor<3xf32>) {
  %c = arith.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %e = tensor.empty() : tensor<2x2xf32>
  %0 = linalg.generic {indexing_maps = [#tr, #id2], iterator_types = ["parallel", "parallel"]} ins(%c : tensor<2x2xf32>) outs(%e : tensor<2x2xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<2x2xf32>
  %half = arith.constant 0.5 : f32
  %e3 = tensor.empty() : tensor<3xf32>
  %1 = linalg.generic {indexing_maps = [#sc, #ve], iterator_types = ["parallel"]} ins(%half : f32) outs(%e3 : tensor<3xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  } -> tensor<3xf32>
  return %0, %1 : tensor<2x2xf32>, tensor<3xf32>
}

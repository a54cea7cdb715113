// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-gpu-matmul{precision=int8})' | FileCheck %s
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-gpu-matmul{precision=fp32})' | FileCheck %s --check-prefix=FP32

// precision=int8: a fully connected layer (x . W^T, W[4, 8] a constant,
// transposed as torch-mlir writes nn.Linear) whose input is the importer's
// int8 quantization gets an int8-weight kernel: W's int8 values (row 0: all
// 0.5, q = 127 = 0x7f; row 1: 0.25 on the grid of its own peak 0.25, also
// 127), four k to a word, words [K/4][N] (2 x 4), one scale per output.
// CHECK-LABEL: func.func @linear
// CHECK-NOT: linalg.matmul
// CHECK: %[[W:.*]] = arith.constant dense<2139062143> : tensor<8xi32>
// CHECK: %[[S:.*]] = arith.constant dense<[0.00393700786, 0.00196850393, 0.00393700786, 0.00393700786]> : tensor<4xf32>
// CHECK: call @rt3d_gpu_dispatch_0(%{{.*}}, %[[W]], %[[S]]) : (tensor<1x8xf32>, tensor<8xi32>, tensor<4xf32>) -> tensor<1x4xf32>
// The kernel: per output, the words of its column, each byte sign-extended
// (two shifts), converted and multiplied with its input; the sum scaled once.
// CHECK: gpu.func @rt3d_matmul_0(%arg0: memref<8xf32>, %arg1: memref<8xi32>, %arg2: memref<4xf32>, %arg3: memref<4xf32>)
// CHECK: scf.for
// CHECK: arith.shrsi
// CHECK: arith.sitofp %{{.*}} : i32 to f32
// CHECK: math.fma
// CHECK: arith.mulf
// Other precisions leave it to rt3d-gpu-generic.
// FP32-LABEL: func.func @linear
// FP32: linalg.matmul
func.func @linear(%x: tensor<1x8xf32>) -> tensor<1x4xf32> {
  %s = arith.constant 2.500000e-01 : f64
  %lo = arith.constant -1.270000e+02 : f32
  %hi = arith.constant 1.270000e+02 : f32
  %e = tensor.empty() : tensor<1x8xf32>
  %d = linalg.generic {indexing_maps = [affine_map<(n, c) -> (n, c)>, affine_map<(n, c) -> (n, c)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<1x8xf32>) outs(%e : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %s : f64 to f32
    %v = arith.divf %in, %t : f32
    linalg.yield %v : f32
  } -> tensor<1x8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(n, c) -> (n, c)>, affine_map<(n, c) -> (n, c)>], iterator_types = ["parallel", "parallel"]} ins(%d : tensor<1x8xf32>) outs(%e : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = math.roundeven %in : f32
    linalg.yield %v : f32
  } -> tensor<1x8xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(n, c) -> (n, c)>, affine_map<(n, c) -> (n, c)>], iterator_types = ["parallel", "parallel"]} ins(%r : tensor<1x8xf32>) outs(%e : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b1 = arith.cmpf ult, %in, %lo : f32
    %v1 = arith.select %b1, %lo, %in : f32
    %b2 = arith.cmpf ugt, %v1, %hi : f32
    %v2 = arith.select %b2, %hi, %v1 : f32
    linalg.yield %v2 : f32
  } -> tensor<1x8xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(n, c) -> (n, c)>, affine_map<(n, c) -> (n, c)>], iterator_types = ["parallel", "parallel"]} ins(%c : tensor<1x8xf32>) outs(%e : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %s : f64 to f32
    %v = arith.mulf %in, %t : f32
    linalg.yield %v : f32
  } -> tensor<1x8xf32>
  %w = arith.constant dense<[[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]> : tensor<4x8xf32>
  %wt0 = tensor.empty() : tensor<8x4xf32>
  %wt = linalg.transpose ins(%w : tensor<4x8xf32>) outs(%wt0 : tensor<8x4xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %y0 = tensor.empty() : tensor<1x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%y0 : tensor<1x4xf32>) -> tensor<1x4xf32>
  %y = linalg.matmul ins(%m, %wt : tensor<1x8xf32>, tensor<8x4xf32>) outs(%init : tensor<1x4xf32>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

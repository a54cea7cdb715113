// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-matmul{vector-width=2 unroll=2}, canonicalize, cse)' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-matmul{vector-width=2 unroll=2 precision=bf16}, canonicalize, cse)' | FileCheck %s --check-prefix=BF16
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-matmul{vector-width=2 unroll=2 precision=fp16}, canonicalize, cse)' | FileCheck %s --check-prefix=FP16

// nn.Linear as torch-mlir emits it: matmul with a transposed constant and
// a zero init. The weight is transposed at compile time into [N/2][K][2]
// blocks (the odd third output padded with zeros); the kernel keeps two
// accumulators over K (unroll=2), adds the odd K remainder, sums them and
// stores the block's outputs with a mask (3 outputs, 2 lanes).
// CHECK-LABEL: func.func @linear
// CHECK: %[[W:.*]] = arith.constant dense<[1.000000e+00, 6.000000e+00, 2.000000e+00, 7.000000e+00, 3.000000e+00, 8.000000e+00, 4.000000e+00, 9.000000e+00, 5.000000e+00, 1.000000e+01, 1.100000e+01, 0.000000e+00, 1.200000e+01, 0.000000e+00, 1.300000e+01, 0.000000e+00, 1.400000e+01, 0.000000e+00, 1.500000e+01, 0.000000e+00]> : tensor<20xf32>
// CHECK-NOT: linalg.transpose
// CHECK-NOT: linalg.matmul
// CHECK: call @rt3d_matmul_dispatch_0
// CHECK-LABEL: func.func @rt3d_matmul_kernel_0
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 2 : i64}
// CHECK: %{{.*}}:2 = scf.for %{{.*}} iter_args(%{{.*}} = %[[ZERO:.*]], %{{.*}} = %[[ZERO]]) -> (vector<2xf32>, vector<2xf32>)
// CHECK-COUNT-2: vector.fma
// CHECK: scf.yield
// CHECK: vector.fma
// CHECK: arith.addf {{.*}} : vector<2xf32>
// CHECK: vector.create_mask
// CHECK: vector.maskedstore
// CHECK: func.func private @rt3d_matmul_dispatch_0(memref<5xf32>, memref<20xf32>, memref<3xf32>) attributes {rt3d.dense_flops = 30 : i64, rt3d.flops = 30 : i64, rt3d.kernel = "rt3d_matmul_kernel_0", rt3d.parallel_tasks = 2 : i64}
// precision=bf16: the same packed order as bf16 bit patterns (1.0 is
// 0x3F80 = 16256, 6.0 0x40C0 = 16576, 2.0 16384, 7.0 16608), half the bytes;
// each weight vector is widened as it is loaded, the FMAs stay f32.
// BF16-LABEL: func.func @linear
// BF16: arith.constant dense<[16256, 16576, 16384, 16608, {{.*}}]> : tensor<20xi16>
// BF16-LABEL: func.func @rt3d_matmul_kernel_0
// BF16: vector.load %{{.*}} : memref<20xi16>, vector<2xi16>
// BF16: vector.bitcast %{{.*}} : vector<2xi16> to vector<2xbf16>
// BF16: arith.extf %{{.*}} : vector<2xbf16> to vector<2xf32>
// BF16: vector.fma %{{.*}} : vector<2xf32>
// precision=fp16: the same packed order in IEEE half, widened as loaded.
// FP16-LABEL: func.func @linear
// FP16: arith.constant dense<[1.000000e+00, 6.000000e+00, 2.000000e+00, {{.*}}]> : tensor<20xf16>
// FP16-LABEL: func.func @rt3d_matmul_kernel_0
// FP16: vector.load %{{.*}} : memref<20xf16>, vector<2xf16>
// FP16: arith.extf %{{.*}} : vector<2xf16> to vector<2xf32>
// FP16: vector.fma %{{.*}} : vector<2xf32>
func.func @linear(%x: tensor<1x5xf32>) -> tensor<1x3xf32> {
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0], [11.0, 12.0, 13.0, 14.0, 15.0]]> : tensor<3x5xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<5x3xf32>
  %t = linalg.transpose ins(%w : tensor<3x5xf32>) outs(%e : tensor<5x3xf32>) permutation = [1, 0]
  %e2 = tensor.empty() : tensor<1x3xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x3xf32>) -> tensor<1x3xf32>
  %y = linalg.matmul ins(%x, %t : tensor<1x5xf32>, tensor<5x3xf32>) outs(%init : tensor<1x3xf32>) -> tensor<1x3xf32>
  return %y : tensor<1x3xf32>
}

// -----

// A weight computed at run time is left to the default lowering.
// CHECK-LABEL: func.func @dynamic
// CHECK: linalg.matmul
// CHECK-NOT: call @rt3d_matmul_dispatch
func.func @dynamic(%x: tensor<1x5xf32>, %w: tensor<5x3xf32>) -> tensor<1x3xf32> {
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<1x3xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x3xf32>) -> tensor<1x3xf32>
  %y = linalg.matmul ins(%x, %w : tensor<1x5xf32>, tensor<5x3xf32>) outs(%init : tensor<1x3xf32>) -> tensor<1x3xf32>
  return %y : tensor<1x3xf32>
}

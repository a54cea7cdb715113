// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize-quantize{vector-width=4})' | FileCheck %s

// An rt3d.quantize left standing (here: of a function argument) becomes a
// call of the quantize kernel: the plain f32 input in, the zero-padded int8
// input blocked by 4 channels out (1 x 1 x 1 x 2 x 3 x 4 = 24 bytes).
// CHECK-LABEL: func.func @quantize
// CHECK-NOT: rt3d.quantize
// CHECK: call @rt3d_quantize_dispatch_0(%{{.*}}, %{{.*}}) : (memref<16xf32>, memref<24xi8>) -> ()
// CHECK: tensor.expand_shape {{.*}} into tensor<1x1x1x2x3x4xi8>
// The kernel: per row, the four channels' columns divided by the scale,
// rounded to even, clamped, shifted by the zero point, narrowed and
// interleaved into one vector of quads; the padding column is the zero
// point (-128 as a signed byte).
// CHECK-LABEL: func.func @rt3d_quantize_kernel_0(
// CHECK-SAME: %{{.*}}: memref<16xf32>, %{{.*}}: memref<24xi8>
// CHECK-DAG: arith.constant dense<-128> : vector<16xi8>
// CHECK-DAG: arith.constant dense<2.500000e-01> : vector<4xf32>
// CHECK: arith.divf %{{.*}} : vector<4xf32>
// CHECK: math.roundeven
// CHECK: arith.fptosi %{{.*}} : vector<4xf32> to vector<4xi32>
// CHECK: arith.addi
// CHECK: arith.trunci %{{.*}} : vector<4xi32> to vector<4xi8>
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15] : vector<8xi8>, vector<8xi8>
// CHECK: vector.maskedstore
func.func @quantize(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x1x1x2x3x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, scale = 2.500000e-01 : f64, zero_point = 128 : i64} : (tensor<1x4x1x2x2xf32>) -> tensor<1x1x1x2x3x4xi8>
  return %q : tensor<1x1x1x2x3x4xi8>
}

// -----

// Signed bytes (zero point 0, AArch64's sdot): no shift, padding 0.
// CHECK-LABEL: func.func @rt3d_quantize_kernel_0(
// CHECK-DAG: arith.constant dense<0> : vector<16xi8>
// CHECK-NOT: arith.addi %{{.*}} : vector<4xi32>
// CHECK: arith.trunci
func.func @signed(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x1x1x2x3x4xi8> {
  %q = "rt3d.quantize"(%x) {padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, scale = 2.500000e-01 : f64, zero_point = 0 : i64} : (tensor<1x4x1x2x2xf32>) -> tensor<1x1x1x2x3x4xi8>
  return %q : tensor<1x1x1x2x3x4xi8>
}

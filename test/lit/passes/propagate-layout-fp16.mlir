// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=fp16})' | FileCheck %s
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=fp16}, rt3d-vectorize{vector-width=4})' | FileCheck %s --check-prefix=WIDE
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=fp16}, rt3d-vectorize{vector-width=4 native-f16=1})' | FileCheck %s --check-prefix=NATIVE

// precision=fp16: the blocked activation between two "filters" convs is
// stored in IEEE half; the consumer gets its 32 weights in f16 (the packed
// layout unchanged); its plain result stays f32.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Y:.*]] = "rt3d.packed_conv3d"
// CHECK-SAME: output_layout = "blocked"
// CHECK-SAME: -> tensor<1x1x1x2x2x4xf16>
// CHECK: %[[W:.*]] = arith.constant dense<1.000000e+00> : tensor<32xf16>
// CHECK: "rt3d.packed_conv3d"(%[[Y]], %[[W]],
// CHECK-SAME: input_layout = "blocked"
// CHECK-SAME: -> tensor<1x4x1x2x1xf32>
// The producer rounds its f32 accumulators once, as it stores them.
// Without f16 arithmetic (native-f16=0) the consumer widens each weight
// vector and input and issues f32 FMAs.
// WIDE-LABEL: func.func @rt3d_conv_kernel_0(
// WIDE: arith.truncf %{{.*}} : vector<4xf32> to vector<4xf16>
// WIDE: vector.store %{{.*}} : memref<16xf16>, vector<4xf16>
// WIDE-LABEL: func.func @rt3d_conv_kernel_1(
// WIDE-SAME: %{{.*}}: memref<16xf16>, %{{.*}}: memref<32xf16>,
// WIDE: vector.load %{{.*}} : memref<32xf16>, vector<4xf16>
// WIDE: arith.extf %{{.*}} : vector<4xf16> to vector<4xf32>
// WIDE: memref.load %{{.*}} : memref<16xf16>
// WIDE: arith.extf %{{.*}} : f16 to f32
// WIDE: vector.fma %{{.*}} : vector<4xf32>
// WIDE-NOT: {{(mulf|fma) .*}} : vector<4xf16>{{$}}
// WIDE: return
// With f16 arithmetic each entry's run of 4 channels is summed in f16 (a
// product, then FMAs), widened once and added to the f32 accumulator.
// NATIVE-LABEL: func.func @rt3d_conv_kernel_1(
// NATIVE: scf.for {{.*}} -> (vector<4xf32>
// NATIVE: memref.load %{{.*}} : memref<16xf16>
// NATIVE: vector.broadcast %{{.*}} : f16 to vector<4xf16>
// NATIVE: arith.mulf %{{.*}} : vector<4xf16>
// NATIVE-COUNT-3: vector.fma %{{.*}} : vector<4xf16>
// NATIVE: arith.extf %{{.*}} : vector<4xf16> to vector<4xf32>
// NATIVE: arith.addf %{{.*}} : vector<4xf32>
// NATIVE: scf.yield
func.func @chain(%x: tensor<1x1x1x2x2xf32>) -> tensor<1x4x1x2x1xf32> {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  return %z : tensor<1x4x1x2x1xf32>
}

// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=bf16})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=bf16}, rt3d-vectorize-pool{vector-width=4}, rt3d-vectorize{vector-width=4})' | FileCheck %s --check-prefix=KERNEL
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=bf16}, rt3d-vectorize-pool{vector-width=4}, rt3d-vectorize{vector-width=4 native-bf16=1})' | FileCheck %s --check-prefix=KERNEL
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4 precision=bf16}, rt3d-vectorize-elementwise{vector-width=4 min-elements=1})' | FileCheck %s --check-prefix=ELEMENTWISE
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=16 precision=bf16}, rt3d-vectorize{vector-width=16 native-bf16=1})' | FileCheck %s --check-prefix=NATIVE
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=16 precision=bf16}, rt3d-vectorize{vector-width=16 native-bf16=1 amx=1})' | FileCheck %s --check-prefix=AMX

// precision=bf16: the blocked activation between two "filters" convs is
// stored in bfloat16; the consumer (runs of 4 channels: two pairs) gets its
// 32 weights as bf16 channel pairs (i16 bit patterns); its plain f32 result
// stays f32.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Y:.*]] = "rt3d.packed_conv3d"
// CHECK-SAME: output_layout = "blocked"
// CHECK-SAME: -> tensor<1x1x1x2x2x4xbf16>
// CHECK: %[[W:.*]] = arith.constant dense<16256> : tensor<32xi16>
// CHECK: "rt3d.packed_conv3d"(%[[Y]], %[[W]],
// CHECK-SAME: input_layout = "blocked"
// CHECK-SAME: -> tensor<1x4x1x2x1xf32>
// The producer rounds its f32 accumulators once, as it stores them; the
// consumer (4 lanes: no AVX-512 BF16 dot product, native or not) splits
// each pair's weights into even and odd lanes, widens them and the inputs,
// and issues one FMA per channel.
// KERNEL-LABEL: func.func @rt3d_conv_kernel_0(
// KERNEL-SAME: %{{.*}}: memref<16xbf16>, %{{.*}}: i64, %{{.*}}: i64)
// KERNEL: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// KERNEL: vector.store %{{.*}} : memref<16xbf16>, vector<4xbf16>
// KERNEL-LABEL: func.func @rt3d_conv_kernel_1(
// KERNEL-SAME: %{{.*}}: memref<16xbf16>, %{{.*}}: memref<32xi16>,
// KERNEL: vector.load %{{.*}} : memref<32xi16>, vector<8xi16>
// KERNEL: vector.shuffle %{{.*}} [0, 2, 4, 6] : vector<8xbf16>, vector<8xbf16>
// KERNEL: arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// KERNEL: memref.load %{{.*}} : memref<16xbf16>
// KERNEL: arith.extf %{{.*}} : bf16 to f32
// KERNEL: vector.fma
// KERNEL-NOT: llvm.x86
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

// -----

// A pool between the convs computes in bf16 too: its result and the value
// it pools with are bf16; the pool's result is also returned: its
// conversion back to the plain layout widens to f32.
// CHECK-LABEL: func.func @pooled
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: -> tensor<1x1x2x2x2x4xbf16>
// CHECK: linalg.fill ins(%{{.*}} : bf16) outs(%{{.*}} : tensor<1x1x1x1x1x4xbf16>)
// CHECK: arith.maximumf %{{.*}}, %{{.*}} : bf16
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: return %{{.*}}, %{{.*}} : tensor<1x4x1x1x1xf32>, tensor<1x4x1x1x1xf32>
// KERNEL-LABEL: func.func @pooled
// KERNEL-LABEL: func.func @rt3d_pool_kernel_0(
// KERNEL-SAME: %{{.*}}: memref<32xbf16>, %{{.*}}: memref<4xbf16>,
// KERNEL: arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// KERNEL: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
func.func @pooled(%x: tensor<1x1x2x2x2xf32>) -> (tensor<1x4x1x1x1xf32>, tensor<1x4x1x1x1xf32>) {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x2x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x2x2x2xf32>
  %ninf = arith.constant 0xFF800000 : f32
  %e = tensor.empty() : tensor<1x4x1x1x1xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x4x1x1x1xf32>) -> tensor<1x4x1x1x1xf32>
  %win = tensor.empty() : tensor<2x2x2xf32>
  %p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 * 2 + d5, d3 * 2 + d6, d4 * 2 + d7)>, affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>, affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%y, %win : tensor<1x4x2x2x2xf32>, tensor<2x2x2xf32>) outs(%init : tensor<1x4x1x1x1xf32>) {
  ^bb0(%in: f32, %w0: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<1x4x1x1x1xf32>
  %w2 = arith.constant dense<1.0> : tensor<16xf32>
  %off2 = arith.constant dense<[0]> : tensor<1xi32>
  %z = "rt3d.packed_conv3d"(%p, %w2, %off2, %starts, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x1x1xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x1x1xf32>
  return %z, %p : tensor<1x4x1x1x1xf32>, tensor<1x4x1x1x1xf32>
}

// -----

// 16 lanes with AVX-512 BF16: per pair of a run's channels, one broadcast
// 32-bit word of the bf16 input and one dot product per accumulator.
// NATIVE-LABEL: func.func @rt3d_conv_kernel_1(
// NATIVE: vector.load %{{.*}} : memref<256xi16>, vector<32xi16>
// NATIVE: vector.load %{{.*}} : memref<16xbf16>, vector<2xbf16>
// NATIVE: vector.broadcast %{{.*}} : i32 to vector<16xi32>
// NATIVE: call @llvm.x86.avx512bf16.dpbf16ps.512(
// NATIVE-NOT: vector.fma
// NATIVE: return
// NATIVE: func.func private @llvm.x86.avx512bf16.dpbf16ps.512(vector<16xf32>, vector<32xbf16>, vector<32xbf16>) -> vector<16xf32>
func.func @native16(%x: tensor<1x1x1x1x1xf32>) -> tensor<1x16x1x1x1xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]> : tensor<16xi32>
  %bias = arith.constant dense<0.0> : tensor<16xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 16 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x1x1xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x1x1xf32>
  %w2 = arith.constant dense<0.5> : tensor<256xf32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off, %starts, %lanes, %bias) {activation = "none", block_size = 16 : i64, channel_unroll = 16 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x16x1x1x1xf32>, tensor<256xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x1x1xf32>
  return %z : tensor<1x16x1x1x1xf32>
}

// -----

// A residual add in a bf16 component: its operands are widened at the top
// of its body and its result rounded before it is yielded; the elementwise
// kernel loads and stores bf16 vectors and computes in f32.
// CHECK-LABEL: func.func @residual
// CHECK: linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<1x1x1x2x2x4xbf16>)
// CHECK: ^bb0(%[[A:.*]]: bf16, %[[B:.*]]: bf16, %{{.*}}: bf16):
// CHECK: %[[WA:.*]] = arith.extf %[[A]] : bf16 to f32
// CHECK: %[[WB:.*]] = arith.extf %[[B]] : bf16 to f32
// CHECK: %[[S:.*]] = arith.addf %[[WA]], %[[WB]] : f32
// CHECK: %[[N:.*]] = arith.truncf %[[S]] : f32 to bf16
// CHECK: linalg.yield %[[N]] : bf16
// ELEMENTWISE-LABEL: func.func @rt3d_elementwise_kernel_0(
// ELEMENTWISE-SAME: memref<16xbf16>, %{{.*}}: memref<16xbf16>, %{{.*}}: memref<16xbf16>,
// ELEMENTWISE: vector.load %{{.*}} : memref<16xbf16>, vector<4xbf16>
// ELEMENTWISE: arith.extf %{{.*}} : vector<4xbf16> to vector<4xf32>
// ELEMENTWISE: arith.addf %{{.*}}, %{{.*}} : vector<4xf32>
// ELEMENTWISE: arith.truncf %{{.*}} : vector<4xf32> to vector<4xbf16>
// ELEMENTWISE: vector.store %{{.*}} : memref<16xbf16>, vector<4xbf16>
func.func @residual(%x: tensor<1x1x1x2x2xf32>) -> tensor<1x4x1x2x1xf32> {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %w1 = arith.constant dense<0.5> : tensor<16xf32>
  %u = "rt3d.packed_conv3d"(%y, %w1, %off, %starts, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %e = tensor.empty() : tensor<1x4x1x2x2xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>, affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%u, %y : tensor<1x4x1x2x2xf32>, tensor<1x4x1x2x2xf32>) outs(%e : tensor<1x4x1x2x2xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %sum = arith.addf %a, %b : f32
    linalg.yield %sum : f32
  } -> tensor<1x4x1x2x2xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %z = "rt3d.packed_conv3d"(%s, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  return %z : tensor<1x4x1x2x1xf32>
}

// -----

// With AMX tiles, the middle conv's accumulators (3 positions x 16
// filters) start as the bias and are carried through the entry loop; per
// entry one weight tile (8 channel pairs x 16 filters x 2), one input tile
// (the positions' 16 channels, 32 bytes apart) and one tile product; then
// through the stack tile to the blocked output, a vector per position.
// AMX-LABEL: func.func @amx(
// AMX-LABEL: func.func @rt3d_conv_kernel_1(
// AMX-SAME: memref<48xbf16>, %{{.*}}: memref<256xi16>,
// AMX: vector.store %{{.*}}, %{{.*}} : memref<256xf32>, vector<16xf32>
// AMX: %[[BIAS:.*]] = func.call @llvm.x86.tileloadd64.internal(%{{.*}}) : (i16, i16, !llvm.ptr, i64) -> !llvm.x86_amx
// AMX: scf.for %{{.*}} iter_args(%[[ACC:.*]] = %[[BIAS]]) -> (!llvm.x86_amx) {
// AMX: %[[W:.*]] = func.call @llvm.x86.tileloadd64.internal
// AMX: %[[X:.*]] = func.call @llvm.x86.tileloadd64.internal
// AMX: func.call @llvm.x86.tdpbf16ps.internal(%{{.*}}, %{{.*}}, %{{.*}}, %[[ACC]], %[[X]], %[[W]])
// AMX: func.call @llvm.x86.tilestored64.internal
// AMX: vector.load %{{.*}} : memref<256xf32>, vector<16xf32>
// AMX-NOT: vdpbf16ps
// AMX: return
// AMX: func.func private @llvm.x86.tdpbf16ps.internal
func.func @amx(%x: tensor<1x1x1x1x3xf32>) -> tensor<1x16x1x1x3xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]> : tensor<16xi32>
  %bias = arith.constant dense<0.25> : tensor<16xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 16 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x1x3xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x1x3xf32>
  %w2 = arith.constant dense<0.5> : tensor<256xf32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 16 : i64, channel_unroll = 16 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x16x1x1x3xf32>, tensor<256xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x1x3xf32>
  %r = "rt3d.packed_conv3d"(%z, %w2, %off, %starts, %lanes, %bias) {activation = "none", block_size = 16 : i64, channel_unroll = 16 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x16x1x1x3xf32>, tensor<256xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x1x3xf32>
  return %r : tensor<1x16x1x1x3xf32>
}

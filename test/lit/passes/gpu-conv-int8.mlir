// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-gpu-conv{precision=int8})' | FileCheck %s

// precision=int8: a conv reading clamp(round(x / 0.25), -127, 127) * 0.25
// (the importer's int8 quantization, four generics) reads its input
// quantized by a kernel into one 32-bit word per channel quad and padded
// position (W + 1: 1x1x1x2x3 words, the padding 0), its weights as int8
// quads, one word per filter (all 0.5: q = 127 = 0x7f, the word
// 0x7f7f7f7f), and a bias operand of the biases then each filter's factor
// 0.25 x 0.5 / 127. The importer's quantization is gone.
// CHECK-LABEL: func.func @quantized
// CHECK-NOT: linalg.generic
// CHECK: %[[Q:.*]] = call @rt3d_gpu_dispatch_0(%arg0) {{.*}} -> tensor<1x1x1x2x3xi32>
// CHECK-DAG: %[[W:.*]] = arith.constant dense<2139062143> : tensor<4xi32>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 9.842520e-04,
// CHECK: call @rt3d_gpu_dispatch_1(%[[Q]], %[[W]], %{{.*}}, %{{.*}}, %{{.*}}, %[[B]]) {{.*}} -> tensor<1x4x1x2x3xf32>
// The quantize kernel: each channel divided by the scale, rounded to even,
// clamped, converted, its byte shifted into place; 0 in the padding.
// CHECK: gpu.func @rt3d_quantize_0(%arg0: memref<16xf32>, %arg1: memref<6xi32>)
// CHECK: arith.divf
// CHECK: math.roundeven
// CHECK: arith.fptosi %{{.*}} : f32 to i32
// CHECK: arith.shli
// CHECK: arith.ori
// CHECK: scf.yield %{{.*}} : i32
// The conv kernel: int32 sums from zero, one dot product of four bytes per
// quad, filter and position, then sum x factor + bias in f32. The dot
// product is a function of the kernel's module in integer arithmetic (the
// SPIR-V lowering gives it the body of OpSDot).
// CHECK: gpu.module @rt3d_conv_0
// CHECK: func.func @rt3d_dot4x8_acc(%{{.*}}: i32, %{{.*}}: i32, %{{.*}}: i32) -> i32
// CHECK: arith.shrsi
// CHECK: arith.muli
// CHECK: gpu.func @rt3d_conv_0(%arg0: memref<6xi32>, %arg1: memref<1xvector<4xi32>>, %arg2: memref<1xi32>, %arg3: memref<2xi32>, %arg4: memref<4xi32>, %arg5: memref<8xf32>, %arg6: memref<24xf32>)
// CHECK: scf.for {{.*}} -> (i32, i32, i32, i32)
// CHECK: vector.extract %{{.*}}[0] : i32 from vector<4xi32>
// CHECK-COUNT-4: func.call @rt3d_dot4x8_acc(
// CHECK: scf.yield
// CHECK: arith.sitofp %{{.*}} : i32 to f32
// CHECK: arith.mulf
// CHECK: arith.addf
func.func @quantized(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x2x2xf32> {
  %s = arith.constant 2.500000e-01 : f64
  %lo = arith.constant -1.270000e+02 : f32
  %hi = arith.constant 1.270000e+02 : f32
  %e = tensor.empty() : tensor<1x4x1x2x2xf32>
  %d = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x4x1x2x2xf32>) outs(%e : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %s : f64 to f32
    %v = arith.divf %in, %t : f32
    linalg.yield %v : f32
  } -> tensor<1x4x1x2x2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%d : tensor<1x4x1x2x2xf32>) outs(%e : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = math.roundeven %in : f32
    linalg.yield %v : f32
  } -> tensor<1x4x1x2x2xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%r : tensor<1x4x1x2x2xf32>) outs(%e : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b1 = arith.cmpf ult, %in, %lo : f32
    %v1 = arith.select %b1, %lo, %in : f32
    %b2 = arith.cmpf ugt, %v1, %hi : f32
    %v2 = arith.select %b2, %hi, %v1 : f32
    linalg.yield %v2 : f32
  } -> tensor<1x4x1x2x2xf32>
  %m = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%c : tensor<1x4x1x2x2xf32>) outs(%e : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t = arith.truncf %s : f64 to f32
    %v = arith.mulf %in, %t : f32
    linalg.yield %v : f32
  } -> tensor<1x4x1x2x2xf32>
  %w = arith.constant dense<0.5> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<1.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%m, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x3xf32>
  %cut = tensor.extract_slice %y[0, 0, 0, 0, 0] [1, 4, 1, 2, 2] [1, 1, 1, 1, 1] : tensor<1x4x1x2x3xf32> to tensor<1x4x1x2x2xf32>
  return %cut : tensor<1x4x1x2x2xf32>
}

// -----

// A conv whose input is not quantized keeps its f32 kernel, with its
// weights on their int8 grid (filter 1: 0.3 becomes 76 x 0.5 / 127).
// CHECK-LABEL: func.func @plain
// CHECK: arith.constant dense<[5.000000e-01, 0.299212605, 5.000000e-01
// CHECK: gpu.func @rt3d_conv_0(%arg0: memref<16xf32>, %arg1: memref<4xvector<4xf32>>
// CHECK-NOT: rt3d_dot4x8_acc
func.func @plain(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x2x2xf32> {
  %w = arith.constant dense<[0.5, 0.3, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<1.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  return %y : tensor<1x4x1x2x2xf32>
}

// -----

// Two int8 convs in a chain: the first is the only producer of the second's
// quantized input, so its epilogue stores that input (scale 0.5, padded in
// W: 1x1x1x2x3 words, zero-initialised) and no quantize kernel runs between
// them; the first conv's own input still comes from a quantize kernel.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Q:.*]] = call @rt3d_gpu_dispatch_0(%arg0) {{.*}} -> tensor<1x1x1x2x2xi32>
// CHECK: %[[A:.*]] = call @rt3d_gpu_dispatch_1(%[[Q]], {{.*}} -> tensor<1x1x1x2x3xi32>
// CHECK: call @rt3d_gpu_dispatch_2(%[[A]], {{.*}} -> tensor<1x4x1x2x3xf32>
// The first conv's epilogue: each quad's four outputs divided by the next
// scale, rounded, clamped and packed into one word of the padded input.
// CHECK: gpu.func @rt3d_conv_0(%arg0: memref<4xi32>, {{.*}}, %arg6: memref<6xi32>)
// CHECK: func.call @rt3d_dot4x8_acc(
// CHECK: arith.divf %{{.*}}, %{{.*}} : f32
// CHECK: math.roundeven
// CHECK-COUNT-3: arith.ori
// CHECK: memref.store %{{.*}}, %arg6[%{{.*}}] : memref<6xi32>
// CHECK: func.func private @rt3d_gpu_dispatch_1
// CHECK-SAME: rt3d.zero_init
// CHECK-NOT: @rt3d_quantize_1
func.func @chain(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x2x3xf32> {
  %s = arith.constant 2.500000e-01 : f64
  %s2 = arith.constant 5.000000e-01 : f64
  %lo = arith.constant -1.270000e+02 : f32
  %hi = arith.constant 1.270000e+02 : f32
  %e_1 = tensor.empty() : tensor<1x4x1x2x2xf32>
  %d_1 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%x : tensor<1x4x1x2x2xf32>) outs(%e_1 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t_1 = arith.truncf %s : f64 to f32
    %v_1 = arith.divf %in, %t_1 : f32
    linalg.yield %v_1 : f32
  } -> tensor<1x4x1x2x2xf32>
  %r_1 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%d_1 : tensor<1x4x1x2x2xf32>) outs(%e_1 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v_1 = math.roundeven %in : f32
    linalg.yield %v_1 : f32
  } -> tensor<1x4x1x2x2xf32>
  %c_1 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%r_1 : tensor<1x4x1x2x2xf32>) outs(%e_1 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b1_1 = arith.cmpf ult, %in, %lo : f32
    %v1_1 = arith.select %b1_1, %lo, %in : f32
    %b2_1 = arith.cmpf ugt, %v1_1, %hi : f32
    %v2_1 = arith.select %b2_1, %hi, %v1_1 : f32
    linalg.yield %v2_1 : f32
  } -> tensor<1x4x1x2x2xf32>
  %m_1 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%c_1 : tensor<1x4x1x2x2xf32>) outs(%e_1 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t_1 = arith.truncf %s : f64 to f32
    %v_1 = arith.mulf %in, %t_1 : f32
    linalg.yield %v_1 : f32
  } -> tensor<1x4x1x2x2xf32>
  %w = arith.constant dense<0.5> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<1.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%m_1, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %e_2 = tensor.empty() : tensor<1x4x1x2x2xf32>
  %d_2 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%y : tensor<1x4x1x2x2xf32>) outs(%e_2 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t_2 = arith.truncf %s2 : f64 to f32
    %v_2 = arith.divf %in, %t_2 : f32
    linalg.yield %v_2 : f32
  } -> tensor<1x4x1x2x2xf32>
  %r_2 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%d_2 : tensor<1x4x1x2x2xf32>) outs(%e_2 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v_2 = math.roundeven %in : f32
    linalg.yield %v_2 : f32
  } -> tensor<1x4x1x2x2xf32>
  %c_2 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%r_2 : tensor<1x4x1x2x2xf32>) outs(%e_2 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %b1_2 = arith.cmpf ult, %in, %lo : f32
    %v1_2 = arith.select %b1_2, %lo, %in : f32
    %b2_2 = arith.cmpf ugt, %v1_2, %hi : f32
    %v2_2 = arith.select %b2_2, %hi, %v1_2 : f32
    linalg.yield %v2_2 : f32
  } -> tensor<1x4x1x2x2xf32>
  %m_2 = linalg.generic {indexing_maps = [affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>, affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%c_2 : tensor<1x4x1x2x2xf32>) outs(%e_2 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %t_2 = arith.truncf %s2 : f64 to f32
    %v_2 = arith.mulf %in, %t_2 : f32
    linalg.yield %v_2 : f32
  } -> tensor<1x4x1x2x2xf32>
  %z = "rt3d.packed_conv3d"(%m_2, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x3xf32>
  return %z : tensor<1x4x1x2x3xf32>
}

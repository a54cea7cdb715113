// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-quantize-convs{vector-width=4 zero-point=128})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-quantize-convs{vector-width=4 zero-point=0})' | FileCheck %s --check-prefix=SIGNED
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-quantize-convs{vector-width=4 zero-point=0}, rt3d-vectorize{vector-width=4 int8-dot=sdot})' | FileCheck %s --check-prefix=SDOT
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-quantize-convs{vector-width=4 zero-point=128}, rt3d-vectorize{vector-width=4})' | FileCheck %s --check-prefix=WIDE
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-quantize-convs{vector-width=16 zero-point=128}, rt3d-vectorize{vector-width=16 int8-dot=vnni})' | FileCheck %s --check-prefix=VNNI

// A conv reading clamp(round(x / 0.25), -127, 127) * 0.25 (the importer's
// int8 quantization, as torch-mlir lowers it) reads its input through an
// rt3d.quantize: zero-padded (W + 1, the conv's own padding attributes become
// zero), blocked by 4 channels (i8; with zero point 128: q + 128, unsigned
// bytes). Its weights become int8 quads (all 0.5: scale 0.5 / 127, q = 127)
// and its bias operand bias - 128 x factor x sum(q) (1 - 64 = -63) then the
// factors 0.25 x 0.5 / 127.
// The importer's quantization (four generics) is gone, not left to run unread.
// CHECK-LABEL: func.func @quantized
// CHECK-NOT: linalg.generic
// CHECK: %[[Q:.*]] = "rt3d.quantize"(%arg0) {padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, scale = 2.500000e-01 : f64, zero_point = 128 : i64} : (tensor<1x4x1x2x2xf32>) -> tensor<1x1x1x2x3x4xi8>
// CHECK-DAG: %[[W:.*]] = arith.constant dense<127> : tensor<16xi8>
// CHECK-DAG: %[[B:.*]] = arith.constant dense<[-6.300000e+01, -6.300000e+01, -6.300000e+01, -6.300000e+01, 9.842520e-04,
// CHECK: "rt3d.packed_conv3d"(%[[Q]], %[[W]], %{{.*}}, %{{.*}}, %{{.*}}, %[[B]])
// CHECK-SAME: input_layout = "blocked"
// CHECK-SAME: padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>
// CHECK-SAME: rt3d.input_zero_point = 128
// CHECK-SAME: (tensor<1x1x1x2x3x4xi8>, tensor<16xi8>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<8xf32>) -> tensor<1x4x1x2x3xf32>
// Signed bytes (zero point 0, for sdot): no shift, the bias stays.
// SIGNED-LABEL: func.func @quantized
// SIGNED: zero_point = 0 : i64
// SIGNED: dense<[1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 9.842520e-04,
// SIGNED: rt3d.input_zero_point = 0
// The conv kernel: int32 sums from zero, one sdot per quad and position (the
// quad's four input bytes broadcast as one 32-bit word), then sum x factor
// + bias in f32.
// SDOT-LABEL: func.func @rt3d_conv_kernel_0(
// SDOT-SAME: %{{.*}}: memref<24xi8>, %{{.*}}: memref<16xi8>,
// SDOT-SAME: %{{.*}}: memref<8xf32>
// SDOT: vector.load %{{.*}} : memref<24xi8>, vector<4xi8>
// SDOT: vector.bitcast %{{.*}} : vector<4xi32> to vector<16xi8>
// SDOT: func.call @llvm.aarch64.neon.sdot.v4i32.v16i8(
// SDOT: arith.sitofp %{{.*}} : vector<4xi32> to vector<4xf32>
// SDOT: vector.fma
// Without a dot product, each channel's weights are picked from the quads
// and widened, the input bytes widened as unsigned (zero point 128).
// WIDE-LABEL: func.func @rt3d_conv_kernel_0(
// WIDE: vector.shuffle %{{.*}} [0, 4, 8, 12] : vector<16xi8>, vector<16xi8>
// WIDE: arith.extsi %{{.*}} : vector<4xi8> to vector<4xi32>
// WIDE: arith.extui %{{.*}} : i8 to i32
// WIDE: arith.muli
// WIDE-NOT: llvm.aarch64
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
  %y = "rt3d.packed_conv3d"(%m, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters", tile_sizes = array<i64: 1, 3>} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x3xf32>
  %cut = tensor.extract_slice %y[0, 0, 0, 0, 0] [1, 4, 1, 2, 2] [1, 1, 1, 1, 1] : tensor<1x4x1x2x3xf32> to tensor<1x4x1x2x2xf32>
  return %cut : tensor<1x4x1x2x2xf32>
}

// -----

// Blocks of 16 filters: int8 kernels for AVX-512 (vector-width=16: one
// vpdpbusd per quad and position, unsigned input bytes first). Where the
// target's lanes are 4, such a conv keeps its f32 kernel: its weights are put
// on their int8 grid (0.5 stays 0.5), its input stays the quantized f32.
// CHECK-LABEL: func.func @quantized16
// CHECK-NOT: i8
// CHECK: arith.constant dense<5.000000e-01> : tensor<64xf32>
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: -> tensor<1x16x1x2x3xf32>
// VNNI-LABEL: func.func @quantized16
// VNNI: func.func @rt3d_conv_kernel_0(%{{.*}}: memref<24xi8>, %{{.*}}: memref<64xi8>,
// VNNI: vector.bitcast %{{.*}} : vector<16xi32> to vector<64xi8>
// VNNI: func.call @llvm.x86.avx512.vpdpbusd.512(%{{.*}}, %{{.*}}, %{{.*}}) : (vector<16xi32>, vector<64xi8>, vector<64xi8>) -> vector<16xi32>
// VNNI: arith.sitofp %{{.*}} : vector<16xi32> to vector<16xf32>
// VNNI: func.func private @llvm.x86.avx512.vpdpbusd.512
func.func @quantized16(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x16x1x2x3xf32> {
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
  %w = arith.constant dense<0.5> : tensor<64xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]> : tensor<16xi32>
  %bias = arith.constant dense<1.0> : tensor<16xf32>
  %y = "rt3d.packed_conv3d"(%m, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 16 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters", tile_sizes = array<i64: 1, 3>} : (tensor<1x4x1x2x2xf32>, tensor<64xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x2x3xf32>
  return %y : tensor<1x16x1x2x3xf32>
}


// -----

// A conv whose input is not quantized is left alone.
// CHECK-LABEL: func.func @plain
// CHECK-NOT: i8
// CHECK: return
func.func @plain(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x2x2xf32> {
  %w = arith.constant dense<0.5> : tensor<16xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<1.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters", tile_sizes = array<i64: 1, 2>} : (tensor<1x4x1x2x2xf32>, tensor<16xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  return %y : tensor<1x4x1x2x2xf32>
}

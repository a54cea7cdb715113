// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-gpu-conv{precision=fp16})' | FileCheck %s
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-gpu-conv{precision=fp16}, rt3d-gpu-copy, spirv-attach-target{ver=v1.3 caps=Shader,Float16,StorageBuffer16BitAccess exts=SPV_KHR_storage_buffer_storage_class,SPV_KHR_16bit_storage}, convert-gpu-to-spirv, spirv.module(spirv-update-vce))' | FileCheck %s --check-prefix=SPIRV

// precision=fp16: the first conv's only consumer is a conv (pad elision),
// so its zero-initialised padded result is f16; the second conv reads it
// with f16 weights, sums each entry's 4 channels in f16 (a product, then
// FMAs), widens the sum and adds it to its f32 accumulator; its result
// (the function's) stays f32. The first conv reads the f32 input with f32
// weights and rounds its outputs as it stores them.
// CHECK-LABEL: func.func @chain
// CHECK: %[[PAD:.*]] = tensor.pad %arg0
// CHECK: %[[A:.*]] = call @rt3d_gpu_dispatch_0(%[[PAD]], {{.*}} -> tensor<1x4x4x4x6xf16>
// CHECK: %[[W:.*]] = arith.constant dense<1.000000e+00> : tensor<32xf16>
// CHECK: call @rt3d_gpu_dispatch_1(%[[A]], %[[W]], {{.*}} -> tensor<1x4x4x4x4xf32>
// CHECK: gpu.func @rt3d_conv_0(%arg0: memref<384xf32>, %arg1: memref<8xvector<4xf32>>
// CHECK-SAME: %arg6: memref<384xf16>)
// CHECK: vector.fma %{{.*}} : vector<4xf32>
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: gpu.func @rt3d_conv_1(%arg0: memref<384xf16>, %arg1: memref<8xvector<4xf16>>
// CHECK-SAME: %arg6: memref<256xf32>)
// CHECK: scf.for {{.*}} -> (vector<4xf32>)
// CHECK: vector.broadcast %{{.*}} : f16 to vector<4xf16>
// CHECK: arith.mulf %{{.*}} : vector<4xf16>
// CHECK-COUNT-3: vector.fma %{{.*}} : vector<4xf16>
// CHECK: arith.extf %{{.*}} : vector<4xf16> to vector<4xf32>
// CHECK: arith.addf %{{.*}} : vector<4xf32>
// CHECK: scf.yield
// The kernels storing or reading f16 need Float16 and 16-bit storage
// buffers (the runtime enables both device features); the pad kernel of
// the f32 input needs neither.
// SPIRV: spirv.module @__spv__rt3d_conv_0 Logical GLSL450 requires #spirv.vce<v1.0, [Shader, Float16, StorageBuffer16BitAccess, Matrix]
// SPIRV: spirv.module @__spv__rt3d_conv_1 Logical GLSL450 requires #spirv.vce<v1.0, [Shader, StorageBuffer16BitAccess, Float16, Matrix]
// SPIRV: spirv.module @__spv__rt3d_pad_0 Logical GLSL450 requires #spirv.vce<v1.0, [Shader, Matrix], [SPV_KHR_storage_buffer_storage_class]>
func.func @chain(%x: tensor<1x4x4x4x4xf32>) -> tensor<1x4x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<32xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x4x4x4xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x4x4x4xf32>
  %1 = "rt3d.packed_conv3d"(%0, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>} : (tensor<1x4x4x4x4xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x4x4x4xf32>
  return %1 : tensor<1x4x4x4x4xf32>
}

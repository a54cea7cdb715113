// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-gpu-conv)' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-gpu-conv, rt3d-gpu-copy, spirv-attach-target{ver=v1.3 caps=Shader exts=SPV_KHR_storage_buffer_storage_class}, convert-gpu-to-spirv)' | FileCheck %s --check-prefix=SPIRV

// One filter block of 4 filters (vec4 accumulators), two kept entries. The
// input's W padding becomes a tensor.pad (rt3d-gpu-copy gives it a kernel);
// the conv is a call of a dispatch declaration naming the gpu.module, its
// grid and its FLOPs (kept: 2 x 64 positions x 2 entries x 2 channels x 4
// lanes; dense: from dense_weights).
// CHECK: module attributes {gpu.container_module}
// CHECK-LABEL: func.func @conv
// CHECK: %[[PAD:.*]] = tensor.pad %arg0 low[0, 0, 0, 0, 1] high[0, 0, 0, 0, 1]
// CHECK: %[[Y:.*]] = call @rt3d_gpu_dispatch_0(%[[PAD]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x2x4x4x6xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
// CHECK: return %[[Y]]
// CHECK: gpu.module @rt3d_conv_0
// CHECK: gpu.func @rt3d_conv_0(%arg0: memref<192xf32>, %arg1: memref<4xvector<4xf32>>, %arg2: memref<2xi32>, %arg3: memref<2xi32>, %arg4: memref<4xi32>, %arg5: memref<4xf32>, %arg6: memref<192xf32>) kernel
// CHECK-SAME: workgroup_size = [64, 1, 1]
// Both grid axes are guarded.
// CHECK: %[[Y_OK:.*]] = arith.cmpi ult, %block_id_y, %c1
// CHECK: scf.if
// The loop runs over the block's kept entries only, one vec4 FMA per channel.
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c1 iter_args(%{{.*}} = %{{.*}}) -> (vector<4xf32>)
// CHECK-COUNT-2: vector.fma
// CHECK: scf.yield
// Epilogue: lane -> output channel (-1: none), bias, ReLU.
// CHECK: arith.cmpi sge
// CHECK: arith.maximumf
// CHECK: memref.store %{{.*}}, %arg6
// CHECK: func.func private @rt3d_gpu_dispatch_0
// CHECK-SAME: rt3d.dense_flops = 2304 : i64, rt3d.flops = 2048 : i64, rt3d.gpu_kernel = @rt3d_conv_0, rt3d.groups = array<i64: 1, 1, 1>, rt3d.label = "conv"

// SPIRV: spirv.module @__spv__rt3d_conv_0
// SPIRV: spirv.func @rt3d_conv_0(%arg0: !spirv.ptr<!spirv.struct<(!spirv.array<192 x f32, stride=4> [0])>, StorageBuffer>
// SPIRV: spirv.module @__spv__rt3d_pad_0
func.func @conv(%x: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<1.0> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, dense_weights = 18 : i64} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// Pad elision: the first conv's only consumer reads it with W padding 1, so
// it writes the interior of a zero-initialised 1x4x4x4x6 buffer (zero_init)
// and the second conv reads that buffer: no pad between them. The two
// kernels differ only in the plane they write.
// CHECK-LABEL: func.func @chain
// CHECK: %[[PAD:.*]] = tensor.pad %arg0
// CHECK: %[[A:.*]] = call @rt3d_gpu_dispatch_0(%[[PAD]], {{.*}} -> tensor<1x4x4x4x6xf32>
// CHECK-NOT: tensor.pad
// CHECK: %[[B:.*]] = call @rt3d_gpu_dispatch_1(%[[A]], {{.*}} -> tensor<1x4x4x4x4xf32>
// CHECK: gpu.module @rt3d_conv_0
// CHECK: func.func private @rt3d_gpu_dispatch_0({{.*}}) -> tensor<1x4x4x4x6xf32>
// CHECK-SAME: rt3d.zero_init
// CHECK: gpu.module @rt3d_conv_1
// CHECK: func.func private @rt3d_gpu_dispatch_1({{.*}}) -> tensor<1x4x4x4x4xf32>
// CHECK-NOT: rt3d.zero_init
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

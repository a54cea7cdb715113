// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-gpu-copy)' | FileCheck %s

// A constant pad: one invocation per padded element, copying the interior
// and writing the value (here -inf, as before a max pool) on the border.
// CHECK-LABEL: func.func @pad
// CHECK: %[[Y:.*]] = call @rt3d_gpu_dispatch_0(%arg0) : (tensor<1x2x3x4xf32>) -> tensor<1x2x5x6xf32>
// CHECK: return %[[Y]]
// CHECK: gpu.module @rt3d_pad_0
// CHECK: gpu.func @rt3d_pad_0(%arg0: memref<24xf32>, %arg1: memref<60xf32>) kernel
// CHECK: %[[NEG_INF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: scf.if %{{.*}} -> (f32) {
// CHECK: memref.load %arg0
// CHECK: } else {
// CHECK: scf.yield %[[NEG_INF]] : f32
// CHECK: memref.store %{{.*}}, %arg1
// CHECK: func.func private @rt3d_gpu_dispatch_0(tensor<1x2x3x4xf32>) -> tensor<1x2x5x6xf32>
// CHECK-SAME: rt3d.gpu_kernel = @rt3d_pad_0, rt3d.groups = array<i64: 1, 1, 1>, rt3d.label = "pad"
func.func @pad(%x: tensor<1x2x3x4xf32>) -> tensor<1x2x5x6xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %0 = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %ninf : f32
  } : tensor<1x2x3x4xf32> to tensor<1x2x5x6xf32>
  return %0 : tensor<1x2x5x6xf32>
}

// -----

// A concat: one copy dispatch per operand into one buffer; the second
// writes its slice in place (its last operand is the buffer so far).
// CHECK-LABEL: func.func @concat
// CHECK: %[[A:.*]] = call @rt3d_gpu_dispatch_0(%arg0) : (tensor<1x2x4xf32>) -> tensor<1x5x4xf32>
// CHECK: %[[B:.*]] = call @rt3d_gpu_dispatch_1(%arg1, %[[A]]) : (tensor<1x3x4xf32>, tensor<1x5x4xf32>) -> tensor<1x5x4xf32>
// CHECK: return %[[B]]
// CHECK: gpu.func @rt3d_concat_0(%arg0: memref<8xf32>, %arg1: memref<20xf32>)
// CHECK: func.func private @rt3d_gpu_dispatch_0
// CHECK-NOT: rt3d.in_place
// CHECK: gpu.func @rt3d_concat_1(%arg0: memref<12xf32>, %arg1: memref<20xf32>)
// CHECK: func.func private @rt3d_gpu_dispatch_1
// CHECK-SAME: rt3d.in_place
func.func @concat(%a: tensor<1x2x4xf32>, %b: tensor<1x3x4xf32>) -> tensor<1x5x4xf32> {
  %0 = tensor.concat dim(1) %a, %b : (tensor<1x2x4xf32>, tensor<1x3x4xf32>) -> tensor<1x5x4xf32>
  return %0 : tensor<1x5x4xf32>
}

// -----

// torch-mlir casts a concat's first operand to a dynamic size along the
// axis: the copy reads the static tensor behind the cast.
// CHECK-LABEL: func.func @concat_cast
// CHECK: call @rt3d_gpu_dispatch_0(%arg0) : (tensor<1x2x4xf32>) -> tensor<1x5x4xf32>
// CHECK-NOT: memref<?
func.func @concat_cast(%a: tensor<1x2x4xf32>, %b: tensor<1x3x4xf32>) -> tensor<1x5x4xf32> {
  %c = tensor.cast %a : tensor<1x2x4xf32> to tensor<1x?x4xf32>
  %0 = tensor.concat dim(1) %c, %b : (tensor<1x?x4xf32>, tensor<1x3x4xf32>) -> tensor<1x5x4xf32>
  return %0 : tensor<1x5x4xf32>
}

// -----

// A static slice (one half of a channel split): one invocation per element
// of the slice, reading the source at offset + index * stride.
// CHECK-LABEL: func.func @split
// CHECK: %[[Y:.*]] = call @rt3d_gpu_dispatch_0(%arg0) : (tensor<1x4x3x6xf32>) -> tensor<1x2x3x3xf32>
// CHECK: return %[[Y]]
// CHECK: gpu.func @rt3d_slice_0(%arg0: memref<72xf32>, %arg1: memref<18xf32>) kernel
// CHECK: scf.if
// CHECK: memref.load %arg0
// CHECK: memref.store %{{.*}}, %arg1
// CHECK: func.func private @rt3d_gpu_dispatch_0(tensor<1x4x3x6xf32>) -> tensor<1x2x3x3xf32>
// CHECK-SAME: rt3d.label = "slice"
func.func @split(%x: tensor<1x4x3x6xf32>) -> tensor<1x2x3x3xf32> {
  %0 = tensor.extract_slice %x[0, 2, 0, 1] [1, 2, 3, 3] [1, 1, 1, 2] : tensor<1x4x3x6xf32> to tensor<1x2x3x3xf32>
  return %0 : tensor<1x2x3x3xf32>
}

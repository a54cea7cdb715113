// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-externalize-weights{blob-file=%t.bin min-elements=4})' | FileCheck %s
// RUN: %PYTHON -c "import numpy as np; print(np.fromfile('%t.bin', dtype=np.float32).tolist())" | FileCheck %s --check-prefix=BLOB

// Constants with at least 4 elements leave the IR for the blob, 64-byte
// aligned; splats and small constants stay.
// CHECK-DAG: memref.global "public" constant @rt3d_weight_0 : memref<2x3xf32> {alignment = 64 : i64, rt3d.blob_offset = 0 : i64, rt3d.blob_size = 24 : i64}
// CHECK-DAG: memref.global "public" constant @rt3d_weight_1 : memref<5xf32> {alignment = 64 : i64, rt3d.blob_offset = 64 : i64, rt3d.blob_size = 20 : i64}
// CHECK-LABEL: func.func @weights
// CHECK-DAG: arith.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-DAG: arith.constant dense<7.000000e+00> : tensor<8xf32>
// CHECK-DAG: %[[G0:.*]] = memref.get_global @rt3d_weight_0 : memref<2x3xf32>
// CHECK-DAG: bufferization.to_tensor %[[G0]] restrict : memref<2x3xf32> to tensor<2x3xf32>
// CHECK-DAG: %[[G1:.*]] = memref.get_global @rt3d_weight_1 : memref<5xf32>
// CHECK-DAG: bufferization.to_tensor %[[G1]] restrict : memref<5xf32> to tensor<5xf32>
// CHECK-NOT: dense<[1.000000e+01
// BLOB: [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 20.0, 21.0, 22.0, 23.0, 24.0]
func.func @weights() -> (tensor<2x3xf32>, tensor<5xf32>, tensor<2xf32>, tensor<8xf32>) {
  %a = arith.constant dense<[[10.0, 11.0, 12.0], [13.0, 14.0, 15.0]]> : tensor<2x3xf32>
  %b = arith.constant dense<[20.0, 21.0, 22.0, 23.0, 24.0]> : tensor<5xf32>
  %small = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %splat = arith.constant dense<7.0> : tensor<8xf32>
  return %a, %b, %small, %splat : tensor<2x3xf32>, tensor<5xf32>, tensor<2xf32>, tensor<8xf32>
}

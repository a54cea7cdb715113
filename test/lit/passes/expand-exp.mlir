// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-expand-exp)' | FileCheck %s

// exp(x) = 2^k e^r: x clamped to f32's normal range, k = floor(x log2(e) + 1/2),
// r = x - k ln2 (in two parts), e^r by Cephes' polynomial, 2^k from the
// exponent bits ((k + 127) << 23). No math.exp is left for LLVM (which would
// call the C library once per lane).
// CHECK-LABEL: func.func @silu_exp
// CHECK-NOT: math.exp
// CHECK: %[[LO:.*]] = arith.maximumf %arg0, %{{.*}} : vector<8xf32>
// CHECK: %[[X:.*]] = arith.minimumf %[[LO]], %{{.*}} : vector<8xf32>
// CHECK: %[[K:.*]] = math.floor %{{.*}} : vector<8xf32>
// CHECK: %[[KI:.*]] = arith.fptosi %[[K]] : vector<8xf32> to vector<8xi32>
// CHECK: %[[B:.*]] = arith.addi %[[KI]], %{{.*}} : vector<8xi32>
// CHECK: %[[S:.*]] = arith.shli %[[B]], %{{.*}} : vector<8xi32>
// CHECK: %[[P:.*]] = arith.bitcast %[[S]] : vector<8xi32> to vector<8xf32>
// CHECK: %[[R:.*]] = arith.mulf %{{.*}}, %[[P]] : vector<8xf32>
// CHECK: return %[[R]]
func.func @silu_exp(%x: vector<8xf32>) -> vector<8xf32> {
  %0 = math.exp %x : vector<8xf32>
  return %0 : vector<8xf32>
}

// Scalars too; f64 is left alone.
// CHECK-LABEL: func.func @scalar_and_f64
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// CHECK: math.exp %arg1 : f64
func.func @scalar_and_f64(%x: f32, %y: f64) -> (f32, f64) {
  %0 = math.exp %x : f32
  %1 = math.exp %y : f64
  return %0, %1 : f32, f64
}

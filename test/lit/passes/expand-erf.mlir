// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-expand-erf)' | FileCheck %s

// GELU's erf, which the SPIR-V conversion cannot take: the A&S 7.1.26
// polynomial in t = 1 / (1 + p|x|), times exp(-x^2), with the sign of x.
// CHECK-LABEL: func.func @gelu_erf
// CHECK-NOT: math.erf
// CHECK: %[[AX:.*]] = math.absf %arg0 : f32
// CHECK: arith.mulf %{{.*}}, %[[AX]]
// CHECK: arith.divf
// CHECK-COUNT-5: arith.mulf
// CHECK: %[[SQ:.*]] = arith.mulf %arg0, %arg0 : f32
// CHECK: %[[NEG:.*]] = arith.negf %[[SQ]]
// CHECK: math.exp %[[NEG]]
// CHECK: %[[R:.*]] = math.copysign %{{.*}}, %arg0 : f32
// CHECK: return %[[R]]
func.func @gelu_erf(%x: f32) -> f32 {
  %0 = math.erf %x : f32
  return %0 : f32
}

// Vectors of f32 get splat constants; other element types are left alone.
// CHECK-LABEL: func.func @vector_and_f64
// CHECK: arith.constant dense<1.000000e+00> : vector<4xf32>
// CHECK: math.copysign %{{.*}}, %arg0 : vector<4xf32>
// CHECK: math.erf %arg1 : f64
func.func @vector_and_f64(%x: vector<4xf32>, %y: f64) -> (vector<4xf32>, f64) {
  %0 = math.erf %x : vector<4xf32>
  %1 = math.erf %y : f64
  return %0, %1 : vector<4xf32>, f64
}

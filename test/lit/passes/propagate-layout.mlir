// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4})' | FileCheck %s
// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-propagate-layout{vector-width=4}, rt3d-vectorize{vector-width=4})' | FileCheck %s --check-prefix=KERNEL

// A "filters" conv whose one block is channels 0-3 in order, read only by a
// "filters" conv: the activation between them becomes (N, C / 4, D, H, W, 4),
// the producer writes it, and the consumer's entry offsets (channel run 0 at
// W positions 0 and 1 of a 1x2x2 plane) index it: 0 -> 0, 1 -> 1 x 4.
// CHECK-LABEL: func.func @chain
// CHECK: %[[Y:.*]] = "rt3d.packed_conv3d"
// CHECK-SAME: output_layout = "blocked"
// CHECK-SAME: -> tensor<1x1x1x2x2x4xf32>
// CHECK: %[[OFF:.*]] = arith.constant dense<[0, 4]> : tensor<2xi32>
// CHECK: "rt3d.packed_conv3d"(%[[Y]], %{{.*}}, %[[OFF]],
// CHECK-SAME: input_layout = "blocked"
// CHECK-SAME: (tensor<1x1x1x2x2x4xf32>,
// CHECK-SAME: -> tensor<1x4x1x2x1xf32>
// The producer's kernel stores each position's 4 filters as one vector of
// the blocked output (no scratch tile, no gathers); the consumer (plain
// output) keeps the transposing store through its scratch tile.
// KERNEL-LABEL: func.func @rt3d_conv_kernel_0(
// KERNEL-SAME: %{{.*}}: memref<16xf32>, %{{.*}}: i64, %{{.*}}: i64)
// KERNEL-NOT: alloca
// KERNEL-NOT: vector.gather
// KERNEL: vector.store %{{.*}} : memref<16xf32>, vector<4xf32>
// KERNEL: vector.store %{{.*}} : memref<16xf32>, vector<4xf32>
// KERNEL-LABEL: func.func @rt3d_conv_kernel_1(
// KERNEL: memref.alloca
// KERNEL: vector.gather
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

// Stays plain: a block whose lanes are not channels 0-3 in order (the
// permutation of clustered kernel groups).
// CHECK-LABEL: func.func @permuted
// CHECK-NOT: layout
// CHECK: return
func.func @permuted(%x: tensor<1x1x1x2x2xf32>) -> tensor<1x4x1x2x1xf32> {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %swapped = arith.constant dense<[1, 0, 2, 3]> : tensor<4xi32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %swapped, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x2xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  return %z : tensor<1x4x1x2x1xf32>
}

// -----

// A residual add of two blocked conv outputs is computed blocked (rank-6
// identity maps on a rank-6 tensor.empty), its result read blocked by a conv
// and, being small, converted back for the function's result by a generic
// reading element (n, c floordiv 4, d, h, w, c mod 4).
// CHECK-LABEL: func.func @residual
// CHECK: %[[A:.*]] = "rt3d.packed_conv3d"{{.*}}output_layout = "blocked"{{.*}} -> tensor<1x1x1x2x3x4xf32>
// CHECK: %[[B:.*]] = "rt3d.packed_conv3d"{{.*}}output_layout = "blocked"{{.*}} -> tensor<1x1x1x2x3x4xf32>
// CHECK: %[[E:.*]] = tensor.empty() : tensor<1x1x1x2x3x4xf32>
// CHECK: %[[S:.*]] = linalg.generic {{.*}} ins(%[[A]], %[[B]] : tensor<1x1x1x2x3x4xf32>, tensor<1x1x1x2x3x4xf32>) outs(%[[E]] : tensor<1x1x1x2x3x4xf32>)
// CHECK: "rt3d.packed_conv3d"(%[[S]],{{.*}}input_layout = "blocked"
// CHECK: %[[P:.*]] = linalg.generic {{.*}} ins(%[[S]] : tensor<1x1x1x2x3x4xf32>) outs(%{{.*}} : tensor<1x4x1x2x3xf32>)
// CHECK: return %{{.*}}, %[[P]]
#id = affine_map<(n, c, d, h, w) -> (n, c, d, h, w)>
func.func @residual(%x: tensor<1x1x1x2x3xf32>) -> (tensor<1x4x1x2x2xf32>, tensor<1x4x1x2x3xf32>) {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %a = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x3xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x3xf32>
  %b = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x2x3xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x3xf32>
  %e = tensor.empty() : tensor<1x4x1x2x3xf32>
  %s = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%a, %b : tensor<1x4x1x2x3xf32>, tensor<1x4x1x2x3xf32>) outs(%e : tensor<1x4x1x2x3xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %t = arith.addf %p, %q : f32
    linalg.yield %t : f32
  } -> tensor<1x4x1x2x3xf32>
  %z = "rt3d.packed_conv3d"(%s, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x3xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x2xf32>
  return %z, %s : tensor<1x4x1x2x2xf32>, tensor<1x4x1x2x3xf32>
}

// -----

// Too large to convert (4 x 256 x 257 > 2^18 elements): an activation a conv
// reads blocked but the function returns stays plain, and so its producer.
// CHECK-LABEL: func.func @large
// CHECK-NOT: layout
// CHECK: return
func.func @large(%x: tensor<1x1x1x256x257xf32>) -> (tensor<1x4x1x256x256xf32>, tensor<1x4x1x256x257xf32>) {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x256x257xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x256x257xf32>
  %z = "rt3d.packed_conv3d"(%y, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x256x257xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x256x256xf32>
  return %z, %y : tensor<1x4x1x256x256xf32>, tensor<1x4x1x256x257xf32>
}

// -----

// A max pool between two convs computes blocked: the channel within the
// block becomes a sixth parallel loop (d5, before the window loops), its
// init a rank-6 fill, and the conv after it reads the pool's result blocked.
// CHECK: #[[IN:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7, d8) -> (d0, d1, d2 + d6, d3 * 2 + d7, d4 * 2 + d8, d5)>
// CHECK-LABEL: func.func @pooled
// CHECK: %[[Y:.*]] = "rt3d.packed_conv3d"{{.*}}output_layout = "blocked"{{.*}} -> tensor<1x1x1x4x4x4xf32>
// CHECK: %[[E:.*]] = tensor.empty() : tensor<1x1x1x2x2x4xf32>
// CHECK: %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E]] : tensor<1x1x1x2x2x4xf32>)
// CHECK: %[[P:.*]] = linalg.generic {indexing_maps = [#[[IN]], #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%[[Y]], %{{.*}} : tensor<1x1x1x4x4x4xf32>, tensor<1x2x2xf32>) outs(%[[F]] : tensor<1x1x1x2x2x4xf32>)
// CHECK: "rt3d.packed_conv3d"(%[[P]],{{.*}}input_layout = "blocked"
//
// rt3d-vectorize then computes the pool in the first conv's epilogue: the
// 1x4 register tile becomes 2x4 (whole 2x2 windows), the 8 rectified
// accumulators are reduced to 2 pooled vectors, and only the pooled plane
// (16 floats) is stored; no pool is left.
// KERNEL-LABEL: func.func @pooled
// KERNEL: call @rt3d_conv_dispatch_0({{.*}}) : (memref<16xf32>, {{.*}}, memref<16xf32>) -> ()
// KERNEL-NOT: linalg.generic
// KERNEL: call @rt3d_conv_dispatch_1
// KERNEL-LABEL: func.func @rt3d_conv_kernel_0(
// KERNEL: %[[T:.*]]:8 = scf.for
// KERNEL: %[[R0:.*]] = arith.maximumf %[[T]]#0, %[[ZERO:.*]] : vector<4xf32>
// KERNEL: %[[R1:.*]] = arith.maximumf %[[T]]#1, %[[ZERO]]
// KERNEL: %[[R4:.*]] = arith.maximumf %[[T]]#4, %[[ZERO]]
// KERNEL: %[[R5:.*]] = arith.maximumf %[[T]]#5, %[[ZERO]]
// KERNEL: %[[A:.*]] = arith.maximumf %[[R0]], %[[R1]]
// KERNEL: %[[B:.*]] = arith.maximumf %[[A]], %[[R4]]
// KERNEL: %[[C:.*]] = arith.maximumf %[[B]], %[[R5]]
// KERNEL: %[[D:.*]] = arith.maximumf
// KERNEL: %[[E:.*]] = arith.maximumf %[[D]],
// KERNEL: %[[F:.*]] = arith.maximumf %[[E]],
// KERNEL: vector.store %[[C]], %{{.*}} : memref<16xf32>, vector<4xf32>
// KERNEL: vector.store %[[F]], %{{.*}} : memref<16xf32>, vector<4xf32>
// KERNEL-NOT: vector.store
// KERNEL: return
#pin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 + d5, d3 * 2 + d6, d4 * 2 + d7)>
#pwin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>
#pout = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
func.func @pooled(%x: tensor<1x1x1x4x4xf32>) -> tensor<1x4x1x2x1xf32> {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x4x4xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x4x4xf32>
  %cst = arith.constant 0xFF800000 : f32
  %0 = tensor.empty() : tensor<1x4x1x2x2xf32>
  %1 = linalg.fill ins(%cst : f32) outs(%0 : tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x2x2xf32>
  %2 = tensor.empty() : tensor<1x2x2xf32>
  %p = linalg.generic {indexing_maps = [#pin, #pwin, #pout], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%y, %2 : tensor<1x4x1x4x4xf32>, tensor<1x2x2xf32>) outs(%1 : tensor<1x4x1x2x2xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x4x1x2x2xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %z = "rt3d.packed_conv3d"(%p, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 2>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x4x1x2x2xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x2x1xf32>
  return %z : tensor<1x4x1x2x1xf32>
}

// -----

// A concat along the channels of two blocked-writing convs is blocked (along
// the channel blocks), and so is the constant pad of a padded max pool
// reading it: the rank-5 pad of the (N, C/L, D, H, W x L) tensor in memory
// (W's padding times L), the pool computing on rank-6 tensors. Both convs
// reading the concat and the pool read blocked.
// CHECK-LABEL: func.func @concat
// CHECK: %[[A:.*]] = "rt3d.packed_conv3d"{{.*}}output_layout = "blocked"{{.*}} -> tensor<1x1x1x4x4x4xf32>
// CHECK: %[[B:.*]] = "rt3d.packed_conv3d"{{.*}}output_layout = "blocked"{{.*}} -> tensor<1x1x1x4x4x4xf32>
// CHECK: %[[C:.*]] = tensor.concat dim(1) %[[A]], %[[B]] : (tensor<1x1x1x4x4x4xf32>, tensor<1x1x1x4x4x4xf32>) -> tensor<1x2x1x4x4x4xf32>
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[C]] {{\[\[}}0], [1], [2], [3], [4, 5]] : tensor<1x2x1x4x4x4xf32> into tensor<1x2x1x4x16xf32>
// CHECK: %[[PAD:.*]] = tensor.pad %[[FLAT]] low[0, 0, 0, 1, 4] high[0, 0, 0, 1, 4]
// CHECK: tensor.yield %[[NEGINF:.*]] : f32
// CHECK: } : tensor<1x2x1x4x16xf32> to tensor<1x2x1x6x24xf32>
// CHECK: %[[P:.*]] = tensor.expand_shape %[[PAD]] {{\[\[}}0], [1], [2], [3], [4, 5]] output_shape [1, 2, 1, 6, 6, 4]
// CHECK: %[[POOL:.*]] = linalg.generic {{.*}} ins(%[[P]], %{{.*}} : tensor<1x2x1x6x6x4xf32>, tensor<1x3x3xf32>) outs(%{{.*}} : tensor<1x2x1x4x4x4xf32>)
// CHECK: "rt3d.packed_conv3d"(%[[C]],{{.*}}input_layout = "blocked"
// CHECK: "rt3d.packed_conv3d"(%[[POOL]],{{.*}}input_layout = "blocked"
#cin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 + d5, d3 + d6, d4 + d7)>
#cwin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>
#cout = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
func.func @concat(%x: tensor<1x1x1x4x4xf32>) -> (tensor<1x4x1x4x4xf32>, tensor<1x4x1x4x4xf32>) {
  %w = arith.constant dense<1.0> : tensor<4xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %a = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x4x4xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x4x4xf32>
  %b = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x1x1x4x4xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x4x4xf32>
  %c = tensor.concat dim(1) %a, %b : (tensor<1x4x1x4x4xf32>, tensor<1x4x1x4x4xf32>) -> tensor<1x8x1x4x4xf32>
  %ninf = arith.constant 0xFF800000 : f32
  %padded = tensor.pad %c low[0, 0, 0, 1, 1] high[0, 0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index, %i4: index):
    tensor.yield %ninf : f32
  } : tensor<1x8x1x4x4xf32> to tensor<1x8x1x6x6xf32>
  %0 = tensor.empty() : tensor<1x8x1x4x4xf32>
  %1 = linalg.fill ins(%ninf : f32) outs(%0 : tensor<1x8x1x4x4xf32>) -> tensor<1x8x1x4x4xf32>
  %2 = tensor.empty() : tensor<1x3x3xf32>
  %p = linalg.generic {indexing_maps = [#cin, #cwin, #cout], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%padded, %2 : tensor<1x8x1x6x6xf32>, tensor<1x3x3xf32>) outs(%1 : tensor<1x8x1x4x4xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %14 = arith.maximumf %in, %out : f32
    linalg.yield %14 : f32
  } -> tensor<1x8x1x4x4xf32>
  %w2 = arith.constant dense<1.0> : tensor<32xf32>
  %off2 = arith.constant dense<[0, 64]> : tensor<2xi32>
  %starts2 = arith.constant dense<[0, 2]> : tensor<2xi32>
  %y = "rt3d.packed_conv3d"(%c, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x8x1x4x4xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x4x4xf32>
  %z = "rt3d.packed_conv3d"(%p, %w2, %off2, %starts2, %lanes, %bias) {activation = "none", block_size = 4 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters"} : (tensor<1x8x1x4x4xf32>, tensor<32xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x1x4x4xf32>
  return %y, %z : tensor<1x4x1x4x4xf32>, tensor<1x4x1x4x4xf32>
}

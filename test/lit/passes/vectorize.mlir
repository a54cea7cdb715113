// RUN: rt3d-opt %s --split-input-file --pass-pipeline='builtin.module(rt3d-vectorize{vector-width=16})' | FileCheck %s
// (16 lanes, AVX-512's f32 lanes, whatever the machine: the host's are 8 on an AVX2 CPU.)

// A 4-lane block (output channels 0, 2, 1 and an unused lane), two entries
// of two channels, 4x4 output planes in 1x3 register tiles.
//
// The call site: zero-pad once, flatten, call the dispatch with a fresh
// output buffer, reshape the result.
// CHECK-LABEL: func.func @conv
// CHECK: %[[P:.*]] = tensor.pad %arg0 low[0, 0, 0, 0, 1] high[0, 0, 0, 0, 1]
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[P]] {{\[\[}}0, 1, 2, 3, 4]] : tensor<1x2x4x4x6xf32> into tensor<192xf32>
// CHECK: %[[IN:.*]] = bufferization.to_buffer %[[FLAT]] read_only : tensor<192xf32> to memref<192xf32>
// CHECK: %[[OUT:.*]] = memref.alloc() {alignment = 64 : i64} : memref<192xf32>
// CHECK: call @rt3d_conv_dispatch_0(%[[IN]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[OUT]])
// CHECK: %[[T:.*]] = bufferization.to_tensor %[[OUT]] restrict writable
// CHECK: %[[Y:.*]] = tensor.expand_shape %[[T]] {{\[\[}}0, 1, 2, 3, 4]] output_shape [1, 3, 4, 4, 4]
// CHECK: return %[[Y]]
//
// The kernel: tasks (n, block, d) = 1 x 1 x 4; loop order task -> h -> w
// tile -> entries, the accumulators as loop-carried vectors initialized
// with the bias; per entry and channel one weight-vector load and one
// broadcast-FMA per accumulator.
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK-SAME: %[[I:[a-z0-9]+]]: memref<192xf32>, %[[W:[a-z0-9]+]]: memref<16xf32>, %[[OFF:[a-z0-9]+]]: memref<2xi32>, %[[ST:[a-z0-9]+]]: memref<2xi32>, %[[LN:[a-z0-9]+]]: memref<4xi32>, %[[B:[a-z0-9]+]]: memref<4xf32>, %[[O:[a-z0-9]+]]: memref<192xf32>, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 4 : i64}
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<16xf32>
// CHECK: scf.for %[[TASK:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[FIRST:.*]] = memref.load %[[ST]]
// CHECK: %[[LAST:.*]] = memref.load %[[ST]]
// CHECK: %[[BIAS:.*]] = vector.load %[[B]]
// CHECK: scf.for %[[H:.*]] = %{{.*}} to %{{.*}} step
// CHECK: scf.for %[[WT:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[ACC:.*]]:3 = scf.for %[[E:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[A0:.*]] = %[[BIAS]], %[[A1:.*]] = %[[BIAS]], %[[A2:.*]] = %[[BIAS]]) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>)
// CHECK: memref.load %[[OFF]][%[[E]]] : memref<2xi32>
// CHECK: %[[W0:.*]] = vector.load %[[W]]
// CHECK: memref.load %[[I]]
// CHECK: vector.broadcast
// CHECK: vector.fma %{{.*}}, %[[W0]], %[[A0]] : vector<4xf32>
// CHECK: vector.fma %{{.*}}, %[[W0]], %[[A1]] : vector<4xf32>
// CHECK: vector.fma %{{.*}}, %[[W0]], %[[A2]] : vector<4xf32>
// CHECK: %[[W1:.*]] = vector.load %[[W]]
// CHECK-COUNT-3: vector.fma %{{.*}}, %[[W1]], %{{.*}} : vector<4xf32>
// CHECK: scf.yield
// Epilogue: ReLU, then the tile is transposed through the stack scratch
// buffer: each filter's 3 outputs are gathered (stride 4) and written as one
// masked contiguous store to its output channel, if the lane has one.
// CHECK-COUNT-3: vector.store %{{.*}}, %[[SCRATCH:.*]][%{{.*}}] : memref<16xf32>, vector<4xf32>
// CHECK: %[[CMASK:.*]] = vector.constant_mask [3] : vector<4xi1>
// CHECK: %[[CH0:.*]] = vector.extract %{{.*}}[0] : i32 from vector<4xi32>
// CHECK: %[[USED:.*]] = arith.cmpi sge, %[[CH0]]
// CHECK: scf.if %[[USED]]
// CHECK: %[[ROW:.*]] = vector.gather %[[SCRATCH]][%{{.*}}] [%{{.*}}], %[[CMASK]], %{{.*}} : memref<16xf32>, vector<4xi32>, vector<4xi1>, vector<4xf32> into vector<4xf32>
// CHECK: vector.maskedstore %[[O]][%{{.*}}], %[[CMASK]], %[[ROW]] : memref<192xf32>, vector<4xi1>, vector<4xf32>
// CHECK-COUNT-3: vector.gather
// CHECK-NOT: vector.scatter
//
// The column tail (4 = 3 + 1) has its own one-accumulator tile.
// CHECK: scf.for %{{.*}} iter_args(%{{.*}} = %[[BIAS]]) -> (vector<4xf32>)
// CHECK-COUNT-2: vector.fma
// CHECK: arith.maximumf
// CHECK: vector.constant_mask [1] : vector<4xi1>
// CHECK: return
// CHECK: func.func private @rt3d_conv_dispatch_0(memref<192xf32>, memref<16xf32>, memref<2xi32>, memref<2xi32>, memref<4xi32>, memref<4xf32>, memref<192xf32>) attributes {rt3d.dense_flops = 3072 : i64, rt3d.flops = 1024 : i64, rt3d.kernel = "rt3d_conv_kernel_0", rt3d.parallel_tasks = 4 : i64}
func.func @conv(%arg0: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<[1.0, 5.0, 0.0, 0.0, 3.0, 7.0, 0.0, 0.0, 2.0, 6.0, 0.0, 0.0, 4.0, 8.0, 0.0, 0.0]> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, kept_weights = 8 : i64, dense_weights = 24 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 1, 3>, loop_order = "fdhw"} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

// -----

// Output columns in the lanes ("width"): two blocks of two filters,
// 4-lane vectors, 2x6 tiles (6 columns: one full vector and one partial,
// masked). Loop order dhfw: tasks are (n, d); rows, then blocks, then
// columns. Per entry and channel: each filter's weight broadcast once, one
// input vector per row and column vector shared by both filters. Each
// filter's results are stored to its output channel (skipped for an unused
// lane), full vectors non-temporal.
// CHECK-LABEL: func.func @width
// CHECK: call @rt3d_conv_dispatch_0
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK-SAME: attributes {rt3d.kernel_source = "{{[0-9a-f]+}}", rt3d.parallel_tasks = 4 : i64}
// CHECK: scf.for %[[TASK:.*]] = %{{.*}} to %{{.*}} step
// CHECK: arith.divui %[[TASK]]
// CHECK: scf.for %[[H:.*]] = %{{.*}} to %{{.*}} step
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK: memref.load %{{.*}}[%[[B]]] : memref<3xi32>
// CHECK: scf.for %[[W:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[MASK:.*]] = vector.constant_mask [2] : vector<4xi1>
// CHECK: %{{.*}}:8 = scf.for %{{.*}} iter_args({{.*}}) -> (vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>, vector<4xf32>)
// CHECK: %[[W0:.*]] = vector.broadcast %{{.*}} : f32 to vector<4xf32>
// CHECK: %[[W1:.*]] = vector.broadcast %{{.*}} : f32 to vector<4xf32>
// CHECK: %[[X:.*]] = vector.load %{{.*}} : memref<256xf32>, vector<4xf32>
// CHECK: vector.fma %[[W0]], %[[X]], %{{.*}} : vector<4xf32>
// CHECK: vector.fma %[[W1]], %[[X]], %{{.*}} : vector<4xf32>
// CHECK: %[[XT:.*]] = vector.maskedload %{{.*}}, %[[MASK]], %{{.*}} : memref<256xf32>, vector<4xi1>, vector<4xf32> into vector<4xf32>
// CHECK: vector.fma %[[W0]], %[[XT]], %{{.*}} : vector<4xf32>
// CHECK: scf.yield
// CHECK: arith.cmpi sge
// CHECK: scf.if
// CHECK: vector.store %{{.*}} {nontemporal = true} : memref<216xf32>, vector<4xf32>
// CHECK: vector.maskedstore %{{.*}}, %[[MASK]], %{{.*}} : memref<216xf32>, vector<4xi1>, vector<4xf32>
// CHECK-NOT: vector.scatter
// CHECK: func.func private @rt3d_conv_dispatch_0
func.func @width(%arg0: tensor<1x2x4x4x6xf32>) -> tensor<1x3x4x3x6xf32> {
  %w = arith.constant dense<[1.0, 5.0, 3.0, 7.0, 2.0, 6.0, 4.0, 8.0]> : tensor<8xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 1, 2]> : tensor<3xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 2, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 2, 6>, loop_order = "dhfw", vector_dim = "width", vector_lanes = 4 : i64, streaming_stores = true} : (tensor<1x2x4x4x6xf32>, tensor<8xf32>, tensor<2xi32>, tensor<3xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x3x6xf32>
  return %0 : tensor<1x3x4x3x6xf32>
}

// -----

// "interleaved": 8 lanes hold the block's 2 filters at a run of 4 columns
// (lane f * 4 + c). Per entry and channel the 2 weights are loaded once and
// spread 4 times each; each run of 4 input columns is loaded (the partial
// last one of a 6-column row masked) and repeated for both filters; one FMA
// per run. Each filter's 4 lanes are picked out and stored as a run of its
// output row.
// CHECK-LABEL: func.func @interleaved
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK: %[[MASK:.*]] = vector.constant_mask [2] : vector<4xi1>
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [0, 0, 0, 0, 1, 1, 1, 1] : vector<2xf32>, vector<2xf32>
// CHECK: %{{.*}}:4 = scf.for %{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK: %[[WS:.*]] = vector.load %{{.*}} : memref<8xf32>, vector<2xf32>
// CHECK: %[[W:.*]] = vector.shuffle %[[WS]], %[[WS]] [0, 0, 0, 0, 1, 1, 1, 1] : vector<2xf32>, vector<2xf32>
// CHECK: %[[XS:.*]] = vector.load %{{.*}} : memref<256xf32>, vector<4xf32>
// CHECK: %[[X:.*]] = vector.shuffle %[[XS]], %[[XS]] [0, 1, 2, 3, 0, 1, 2, 3] : vector<4xf32>, vector<4xf32>
// CHECK: vector.fma %[[X]], %[[W]], %{{.*}} : vector<8xf32>
// CHECK: vector.maskedload %{{.*}}, %[[MASK]], %{{.*}} : memref<256xf32>, vector<4xi1>, vector<4xf32> into vector<4xf32>
// CHECK: scf.yield
// CHECK: scf.if
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3] : vector<8xf32>, vector<8xf32>
// CHECK: vector.store %{{.*}} : memref<216xf32>, vector<4xf32>
// CHECK: vector.maskedstore %{{.*}}, %[[MASK]], %{{.*}} : memref<216xf32>, vector<4xi1>, vector<4xf32>
// CHECK: scf.if
// CHECK: vector.shuffle %{{.*}}, %{{.*}} [4, 5, 6, 7] : vector<8xf32>, vector<8xf32>
// CHECK: func.func private @rt3d_conv_dispatch_0
func.func @interleaved(%arg0: tensor<1x2x4x4x6xf32>) -> tensor<1x3x4x3x6xf32> {
  %w = arith.constant dense<[1.0, 5.0, 3.0, 7.0, 2.0, 6.0, 4.0, 8.0]> : tensor<8xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 1, 2]> : tensor<3xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 2, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 2, 6>, loop_order = "dhfw", vector_dim = "interleaved", vector_lanes = 8 : i64} : (tensor<1x2x4x4x6xf32>, tensor<8xf32>, tensor<2xi32>, tensor<3xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x3x6xf32>
  return %0 : tensor<1x3x4x3x6xf32>
}

// -----

// A conv whose only user is a conv with padding writes straight into that
// conv's padded input: its output buffer has the padded shape (W 4 -> 6),
// a fill-only pad kernel zeroes the padding first, no tensor.pad copies
// the output, and the second conv reads the buffer without padding.
// CHECK-LABEL: func.func @chain
// CHECK: tensor.pad %arg0
// CHECK: %[[BUF:.*]] = memref.alloc() {alignment = 64 : i64} : memref<288xf32>
// CHECK: call @rt3d_pad_dispatch_{{[0-9]+}}(%[[BUF]]) : (memref<288xf32>) -> ()
// CHECK: call @rt3d_conv_dispatch_{{[0-9]+}}({{.*}}, %[[BUF]])
// CHECK: tensor.expand_shape {{.*}} output_shape [1, 3, 4, 4, 6]
// CHECK-NOT: tensor.pad
// CHECK: call @rt3d_conv_dispatch_
// CHECK: func.func @rt3d_pad_kernel_0(%{{.*}}: memref<288xf32>, %{{.*}}: i64, %{{.*}}: i64)
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK-SAME: %{{.*}}: memref<288xf32>, %{{.*}}: i64, %{{.*}}: i64)
func.func @chain(%arg0: tensor<1x2x4x4x4xf32>) -> tensor<1x2x4x4x4xf32> {
  %w = arith.constant dense<[1.0, 5.0, 0.0, 0.0, 3.0, 7.0, 0.0, 0.0, 2.0, 6.0, 0.0, 0.0, 4.0, 8.0, 0.0, 0.0]> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 1, 3>, loop_order = "fdhw"} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  %w2 = arith.constant dense<[1.0, 2.0, 0.0, 0.0]> : tensor<4xf32>
  %off2 = arith.constant dense<[0]> : tensor<1xi32>
  %starts2 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes2 = arith.constant dense<[0, 1, -1, -1]> : tensor<4xi32>
  %bias2 = arith.constant dense<0.0> : tensor<4xf32>
  %1 = "rt3d.packed_conv3d"(%0, %w2, %off2, %starts2, %lanes2, %bias2) {activation = "none", block_size = 4 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 1, 3>, loop_order = "fdhw"} : (tensor<1x3x4x4x4xf32>, tensor<4xf32>, tensor<1xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x2x4x4x4xf32>
  return %1 : tensor<1x2x4x4x4xf32>
}

// -----

// A (1,2,2) max pool reading a "width" conv alone is computed in the conv's
// epilogue: per filter, after the ReLU, the tile's two rows are reduced lane by lane, the
// row's two column vectors (6 columns, the second masked) by an even/odd
// shuffle into one vector of 3 pooled columns, stored masked into the
// pooled output (72 floats); no pool is left, no streaming stores.
// CHECK-LABEL: func.func @width_pooled
// CHECK: %[[OUT:.*]] = memref.alloc() {alignment = 64 : i64} : memref<72xf32>
// CHECK: call @rt3d_conv_dispatch_0({{.*}}, %[[OUT]])
// CHECK-NOT: linalg.generic
// CHECK: return
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK: %[[T:.*]]:8 = scf.for
// CHECK: scf.if
// CHECK: %[[A0:.*]] = arith.maximumf %[[T]]#0, %[[ZERO:.*]] : vector<4xf32>
// CHECK: %[[A1:.*]] = arith.maximumf %[[T]]#1, %[[ZERO]]
// CHECK: %[[A2:.*]] = arith.maximumf %[[T]]#2, %[[ZERO]]
// CHECK: %[[A3:.*]] = arith.maximumf %[[T]]#3, %[[ZERO]]
// CHECK: %[[R0:.*]] = arith.maximumf %[[A0]], %[[A2]] : vector<4xf32>
// CHECK: %[[R1:.*]] = arith.maximumf %[[A1]], %[[A3]] : vector<4xf32>
// CHECK: %[[E:.*]] = vector.shuffle %[[R0]], %[[R1]] [0, 2, 4, 6] : vector<4xf32>, vector<4xf32>
// CHECK: %[[O:.*]] = vector.shuffle %[[R0]], %[[R1]] [1, 3, 5, 7] : vector<4xf32>, vector<4xf32>
// CHECK: %[[P:.*]] = arith.maximumf %[[E]], %[[O]] : vector<4xf32>
// CHECK: %[[M:.*]] = vector.constant_mask [3] : vector<4xi1>
// CHECK: vector.maskedstore %{{.*}}, %[[M]], %[[P]] : memref<72xf32>, vector<4xi1>, vector<4xf32>
// CHECK-NOT: nontemporal
// CHECK: func.func private @rt3d_conv_dispatch_0
#win = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2 + d5, d3 * 2 + d6, d4 * 2 + d7)>
#wwin = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d5, d6, d7)>
#wout = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4)>
func.func @width_pooled(%arg0: tensor<1x2x4x5x6xf32>) -> tensor<1x3x4x2x3xf32> {
  %w = arith.constant dense<[1.0, 5.0, 3.0, 7.0, 2.0, 6.0, 4.0, 8.0]> : tensor<8xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 1, 2]> : tensor<3xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 2 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 2, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 2, 6>, loop_order = "dhfw", vector_dim = "width", vector_lanes = 4 : i64, streaming_stores = true} : (tensor<1x2x4x5x6xf32>, tensor<8xf32>, tensor<2xi32>, tensor<3xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x6xf32>
  %cst = arith.constant 0xFF800000 : f32
  %1 = tensor.empty() : tensor<1x3x4x2x3xf32>
  %2 = linalg.fill ins(%cst : f32) outs(%1 : tensor<1x3x4x2x3xf32>) -> tensor<1x3x4x2x3xf32>
  %3 = tensor.empty() : tensor<1x2x2xf32>
  %p = linalg.generic {indexing_maps = [#win, #wwin, #wout], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]} ins(%0, %3 : tensor<1x3x4x4x6xf32>, tensor<1x2x2xf32>) outs(%2 : tensor<1x3x4x2x3xf32>) {
  ^bb0(%in: f32, %in_3: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x2x3xf32>
  return %p : tensor<1x3x4x2x3xf32>
}

// -----

// "width" in "dhfw" order with channel chunks of 2 (4 channels, 2 passes):
// the pass derives each block's entry range per chunk from the entry
// offsets (channel = offset / plane 48): block 0 keeps channels 0 and 2
// (one entry per chunk), block 1 only channel 2 (none in chunk 0). Each
// pass over the blocks starts from the bias (first pass) or the partial sums
// in the output, and rectifies only in the last pass.
// CHECK-LABEL: func.func @chunked
// CHECK: %[[TABLE:.*]] = arith.constant dense<[0, 1, 2, 2, 2, 3]> : tensor<6xi32>
// CHECK: %[[CHUNKS:.*]] = bufferization.to_buffer %[[TABLE]]
// CHECK: call @rt3d_conv_dispatch_0({{.*}}, %[[CHUNKS]], %{{.*}}) : ({{.*}}, memref<6xi32>, memref<192xf32>) -> ()
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK-SAME: %[[STARTS:[^:]*]]: memref<6xi32>, %[[OUT:[^:]*]]: memref<192xf32>
// CHECK: scf.for %[[CHUNK:[^ ]*]] = %{{.*}} to %c2 step
// CHECK-NEXT: %[[FIRST:.*]] = arith.cmpi eq, %[[CHUNK]], %{{.*}} : index
// CHECK-NEXT: %[[LAST:.*]] = arith.cmpi eq, %[[CHUNK]], %{{.*}} : index
// CHECK: memref.load %[[STARTS]]
// CHECK: %[[PARTIAL:.*]] = vector.load %[[OUT]][%{{.*}}] : memref<192xf32>, vector<8xf32>
// CHECK: arith.select %[[FIRST]], %{{.*}}, %[[PARTIAL]] : vector<8xf32>
// CHECK: scf.for
// CHECK: vector.fma
// CHECK: scf.yield
// CHECK: %[[RELU:.*]] = arith.maximumf
// CHECK: arith.select %[[LAST]], %[[RELU]], %{{.*}} : vector<8xf32>
// CHECK: vector.store %{{.*}}, %[[OUT]]
func.func @chunked(%arg0: tensor<1x4x2x3x8xf32>) -> tensor<1x4x2x3x8xf32> {
  %w = arith.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]> : tensor<12xf32>
  %off = arith.constant dense<[0, 96, 96]> : tensor<3xi32>
  %starts = arith.constant dense<[0, 2, 3]> : tensor<3xi32>
  %lanes = arith.constant dense<[0, 1, 3, 2]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 2 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 1, 8>, loop_order = "dhfw", vector_dim = "width", vector_lanes = 8 : i64, channel_chunk = 2 : i64} : (tensor<1x4x2x3x8xf32>, tensor<12xf32>, tensor<3xi32>, tensor<3xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x2x3x8xf32>
  return %0 : tensor<1x4x2x3x8xf32>
}

// -----

// A conv whose only reader is an rt3d.quantize (the next int8 conv's input),
// writing whole in-order blocks of the target's 16 lanes, computes it in its
// epilogue: the output buffer is the quantized, zero-padded input (1 x 4
// quads x 1 x 4 x 4 x 4 = 256 bytes), its padding filled with the zero
// point first; the call stands for the quantize, which is gone.
// CHECK-LABEL: func.func @quantized_output
// CHECK-NOT: rt3d.quantize
// CHECK: %[[OUT:.*]] = memref.alloc() {alignment = 64 : i64} : memref<256xi8>
// CHECK: call @rt3d_pad_dispatch_0(%[[OUT]]) : (memref<256xi8>) -> ()
// CHECK: call @rt3d_conv_dispatch_0(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[OUT]])
// CHECK: tensor.expand_shape %{{.*}} into tensor<1x4x1x4x4x4xi8>
// The fill: the zero point, -128 as a signed byte.
// CHECK-LABEL: func.func @rt3d_pad_kernel_0(
// CHECK: arith.constant dense<-128> : vector<16xi8>
// The epilogue: each accumulator (16 filters of one position) rectified,
// divided by the scale, rounded to even, clamped, shifted by the zero point
// and narrowed to 16 bytes; each quad of lanes is one 32-bit store into its
// channel quad's plane (64 bytes apart).
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK-SAME: memref<256xi8>
// CHECK: arith.maximumf
// CHECK: arith.divf %{{.*}} : vector<16xf32>
// CHECK: math.roundeven
// CHECK: arith.trunci %{{.*}} : vector<16xi32> to vector<16xi8>
// CHECK: vector.extract_strided_slice %{{.*}} {offsets = [0], sizes = [4], strides = [1]} : vector<16xi8> to vector<4xi8>
// CHECK: vector.store %{{.*}} : memref<256xi8>, vector<4xi8>
// CHECK: vector.extract_strided_slice %{{.*}} {offsets = [12], sizes = [4], strides = [1]} : vector<16xi8> to vector<4xi8>
func.func @quantized_output(%x: tensor<1x4x1x2x2xf32>) -> tensor<1x4x1x4x4x4xi8> {
  %w = arith.constant dense<0.5> : tensor<64xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]> : tensor<16xi32>
  %bias = arith.constant dense<1.0> : tensor<16xf32>
  %y = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 16 : i64, channel_unroll = 4 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, vector_dim = "filters", tile_sizes = array<i64: 1, 2>} : (tensor<1x4x1x2x2xf32>, tensor<64xf32>, tensor<1xi32>, tensor<2xi32>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x16x1x2x2xf32>
  %q = "rt3d.quantize"(%y) {padding_high = array<i64: 0, 1, 1>, padding_low = array<i64: 0, 1, 1>, scale = 2.500000e-01 : f64, zero_point = 128 : i64} : (tensor<1x16x1x2x2xf32>) -> tensor<1x4x1x4x4x4xi8>
  return %q : tensor<1x4x1x4x4x4xi8>
}

// -----

// A conv ending in SiLU (rt3d-recognize-kgs fuses it): each accumulator is
// divided by 1 + exp(-x) before the store (exp stays math.exp: rt3d-expand-exp
// lowers it later).
// CHECK-LABEL: func.func @rt3d_conv_kernel_0(
// CHECK: %[[ONE:.*]] = arith.constant dense<1.000000e+00> : vector<4xf32>
// CHECK: %[[ACC:.*]]:3 = scf.for
// CHECK: %[[N:.*]] = arith.negf %[[ACC]]#0 : vector<4xf32>
// CHECK: %[[E:.*]] = math.exp %[[N]] : vector<4xf32>
// CHECK: %[[D:.*]] = arith.addf %[[E]], %[[ONE]] : vector<4xf32>
// CHECK: arith.divf %[[ACC]]#0, %[[D]] : vector<4xf32>
func.func @silu(%arg0: tensor<1x2x4x4x4xf32>) -> tensor<1x3x4x4x4xf32> {
  %w = arith.constant dense<[1.0, 5.0, 0.0, 0.0, 3.0, 7.0, 0.0, 0.0, 2.0, 6.0, 0.0, 0.0, 4.0, 8.0, 0.0, 0.0]> : tensor<16xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 2, 1, -1]> : tensor<4xi32>
  %bias = arith.constant dense<[1.0, 2.0, 3.0, 0.0]> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%arg0, %w, %off, %starts, %lanes, %bias) {activation = "silu", block_size = 4 : i64, channel_unroll = 2 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 1>, padding_low = array<i64: 0, 0, 1>, strides = array<i64: 1, 1, 1>, tile_sizes = array<i64: 1, 3>, loop_order = "fdhw"} : (tensor<1x2x4x4x4xf32>, tensor<16xf32>, tensor<2xi32>, tensor<2xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x3x4x4x4xf32>
  return %0 : tensor<1x3x4x4x4xf32>
}

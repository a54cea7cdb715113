// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=2 registers=32 accumulators=14})' | FileCheck %s
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=2 tile-rows=2 tile-cols=2 loop-order=dfhw vector-dim=filters})' | FileCheck %s --check-prefix=USER
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=8 registers=32})' | FileCheck %s --check-prefix=WIDTH
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=16 registers=32})' | FileCheck %s --check-prefix=STREAM
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{loop-order=hwdf})' 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{registers=32})' | FileCheck %s --check-prefix=KEEP
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=16 loop-order=fdhw tile-rows=1 tile-filters=1})' | FileCheck %s --check-prefix=OVERRIDE
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=8 registers=32 channel-chunk=16})' | FileCheck %s --check-prefix=CHUNK16
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=8 registers=32 channel-chunk=4096})' | FileCheck %s --check-prefix=NOCHUNK
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=2 registers=32 accumulators=14 precision=bf16})' | FileCheck %s --check-prefix=HALF
// RUN: not rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{precision=int4})' 2>&1 | FileCheck %s --check-prefix=BADPRECISION
// RUN: rt3d-opt %s --pass-pipeline='builtin.module(rt3d-reorder-loops{lanes=2 registers=32 accumulators=14 row-bands=3})' | FileCheck %s --check-prefix=BANDS

// With 2-lane vectors and 20 columns (>= 4 vectors, a multiple of 2) the
// first conv puts output columns in the lanes, whole rows at a time, with
// plain stores (its output is small); the second has filters in the lanes.
// Both have one output depth and one filter block: one task each, unless
// their rows are split into bands of row groups, 16 (MIN_TASKS) of the 20
// rows, 2 of the 4 rows in tiles of 3 (row-bands=3: 3, and at most 2).
// CHECK-LABEL: func.func @tiles
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: loop_order = "fdhw"
// CHECK-SAME: row_bands = 16 : i64
// CHECK-SAME: streaming_stores = false
// CHECK-SAME: tile_sizes = array<i64: 1, 20>
// CHECK-SAME: vector_dim = "width"
// CHECK-SAME: vector_lanes = 2 : i64
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: loop_order = "fdhw"
// CHECK-SAME: row_bands = 2 : i64
// CHECK-SAME: tile_sizes = array<i64: 3, 4>
// CHECK-SAME: vector_dim = "filters"
// CHECK-SAME: vector_lanes = 2 : i64
//
// 8-lane vectors, blocks of 2 filters: "width" kernels within 32 - 8 = 24
// accumulators. 20 columns take 3 vectors (the last partial), and 4 rows
// fill 2 x 4 x 3 = 24. Rows of 4 columns (half a vector) go "interleaved":
// each vector holds the 2 filters at a run of 4 columns, one run per row.
// WIDTH: tile_sizes = array<i64: 4, 20>
// WIDTH-SAME: vector_dim = "width"
// WIDTH-SAME: vector_lanes = 8 : i64
// WIDTH: tile_sizes = array<i64: 4, 4>
// WIDTH-SAME: vector_dim = "interleaved"
// WIDTH-SAME: vector_lanes = 8 : i64
// USER: loop_order = "dfhw"
// USER-SAME: tile_sizes = array<i64: 2, 2>
// USER-SAME: vector_dim = "filters"
// USER: loop_order = "dfhw"
// USER-SAME: tile_sizes = array<i64: 2, 2>
// USER-SAME: vector_dim = "filters"
// The packed weights are small, so filter blocks go outermost by default.
// BANDS-LABEL: func.func @tiles
// BANDS: row_bands = 3 : i64
// BANDS: row_bands = 2 : i64
// BAD: rt3d-opt: error: pass 'rt3d-reorder-loops': loop-order must be one of fdhw, dfhw, dhfw, got 'hwdf'
// A 16-bit build keeps the wide plane "filters": only those kernels read the
// 16-bit blocked activations (and, on AMX, make tile products of them).
// HALF-LABEL: func.func @tiles
// HALF: "rt3d.packed_conv3d"
// HALF-SAME: vector_dim = "filters"
// HALF: "rt3d.packed_conv3d"
// HALF-SAME: vector_dim = "filters"
// BADPRECISION: rt3d-opt: error: pass 'rt3d-reorder-loops': precision must be one of fp32, bf16, fp16, int8, got 'int4'
func.func @tiles(%x: tensor<1x1x1x20x20xf32>, %y: tensor<1x1x1x4x4xf32>) -> (tensor<1x2x1x20x20xf32>, tensor<1x2x1x4x4xf32>) {
  %w = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1]> : tensor<2xi32>
  %bias = arith.constant dense<0.0> : tensor<2xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x1x20x20xf32>, tensor<2xf32>, tensor<1xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x1x20x20xf32>
  %1 = "rt3d.packed_conv3d"(%y, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x1x4x4xf32>, tensor<2xf32>, tensor<1xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x1x4x4xf32>
  return %0, %1 : tensor<1x2x1x20x20xf32>, tensor<1x2x1x4x4xf32>
}

// Outputs of 4 MiB or more (4x the L2) are written with non-temporal stores
// only when every store is a whole, aligned cache line: rows of 128 floats
// (512 bytes) yes; rows of 120 floats (480 bytes) no.
// STREAM-LABEL: func.func @streaming
// Many tasks (2 blocks x 16 depths): no row bands.
// STREAM: "rt3d.packed_conv3d"
// STREAM-SAME: padding_low = array<i64: 0, 0, 0>, streaming_stores = true
// STREAM-SAME: vector_dim = "width"
// STREAM: "rt3d.packed_conv3d"
// STREAM-SAME: streaming_stores = false
// STREAM-SAME: vector_dim = "width"
func.func @streaming(%x: tensor<1x1x16x128x128xf32>, %y: tensor<1x1x20x128x120xf32>) -> (tensor<1x4x16x128x128xf32>, tensor<1x4x20x128x120xf32>) {
  %w = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %off = arith.constant dense<[0, 0]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 1, 2]> : tensor<3xi32>
  %lanes = arith.constant dense<[0, 1, 2, 3]> : tensor<4xi32>
  %bias = arith.constant dense<0.0> : tensor<4xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x16x128x128xf32>, tensor<4xf32>, tensor<2xi32>, tensor<3xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x16x128x128xf32>
  %1 = "rt3d.packed_conv3d"(%y, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x20x128x120xf32>, tensor<4xf32>, tensor<2xi32>, tensor<3xi32>, tensor<4xi32>, tensor<4xf32>) -> tensor<1x4x20x128x120xf32>
  return %0, %1 : tensor<1x4x16x128x128xf32>, tensor<1x4x20x128x120xf32>
}

// A temporal conv (3x1x1): depth, then row groups, then every block.
// CHECK-LABEL: func.func @temporal
// CHECK: "rt3d.packed_conv3d"
// CHECK-SAME: loop_order = "dhfw"
func.func @temporal(%x: tensor<1x1x6x4x4xf32>) -> tensor<1x2x4x4x4xf32> {
  %w = arith.constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]> : tensor<6xf32>
  %off = arith.constant dense<[0, 16, 32]> : tensor<3xi32>
  %starts = arith.constant dense<[0, 3]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1]> : tensor<2xi32>
  %bias = arith.constant dense<0.0> : tensor<2xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 3, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x6x4x4xf32>, tensor<6xf32>, tensor<3xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x4x4x4xf32>
  return %0 : tensor<1x2x4x4x4xf32>
}

// Narrow "width" blocks (2 filters, 8-lane vectors) of a conv with a window
// (1x1x3): depth, row groups, then every block; a 1x1x1 conv keeps fdhw.
// WIDTH-LABEL: func.func @narrow
// WIDTH: "rt3d.packed_conv3d"
// WIDTH-SAME: loop_order = "dhfw"
// WIDTH-SAME: vector_dim = "width"
// WIDTH: "rt3d.packed_conv3d"
// WIDTH-SAME: loop_order = "fdhw"
// WIDTH-SAME: vector_dim = "width"
func.func @narrow(%x: tensor<1x1x2x4x18xf32>, %y: tensor<1x1x2x4x16xf32>) -> (tensor<1x2x2x4x16xf32>, tensor<1x2x2x4x16xf32>) {
  %w = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %off = arith.constant dense<[0, 2]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1]> : tensor<2xi32>
  %bias = arith.constant dense<0.0> : tensor<2xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x2x4x18xf32>, tensor<4xf32>, tensor<2xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x2x4x16xf32>
  %w1 = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %off1 = arith.constant dense<[0]> : tensor<1xi32>
  %starts1 = arith.constant dense<[0, 1]> : tensor<2xi32>
  %1 = "rt3d.packed_conv3d"(%y, %w1, %off1, %starts1, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x1x2x4x16xf32>, tensor<2xf32>, tensor<1xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x2x4x16xf32>
  return %0, %1 : tensor<1x2x2x4x16xf32>, tensor<1x2x2x4x16xf32>
}

// A schedule already set (by rt3d-compile --tune, from measurements) is
// kept, 8-lane vectors included; the pass's options still override it
// (tile-filters: the filters of a block one "width" tile holds).
// KEEP-LABEL: func.func @preset
// KEEP: "rt3d.packed_conv3d"
// KEEP-SAME: loop_order = "dhfw"
// KEEP-SAME: tile_filters = 2 : i64
// KEEP-SAME: tile_sizes = array<i64: 2, 7>
// KEEP-SAME: vector_dim = "width"
// KEEP-SAME: vector_lanes = 8 : i64
// OVERRIDE-LABEL: func.func @preset
// OVERRIDE: "rt3d.packed_conv3d"
// OVERRIDE-SAME: loop_order = "fdhw"
// OVERRIDE-SAME: tile_filters = 1 : i64
// OVERRIDE-SAME: tile_sizes = array<i64: 1, 7>
// OVERRIDE-SAME: vector_dim = "width"
// OVERRIDE-SAME: vector_lanes = 16 : i64
func.func @preset(%x: tensor<1x1x2x4x7xf32>) -> tensor<1x2x2x4x7xf32> {
  %w = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %off = arith.constant dense<[0]> : tensor<1xi32>
  %starts = arith.constant dense<[0, 1]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1]> : tensor<2xi32>
  %bias = arith.constant dense<0.0> : tensor<2xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "none", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 1>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>, loop_order = "dhfw", tile_sizes = array<i64: 2, 7>, vector_dim = "width", vector_lanes = 8 : i64} : (tensor<1x1x2x4x7xf32>, tensor<2xf32>, tensor<1xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x2x4x7xf32>
  return %0 : tensor<1x2x2x4x7xf32>
}

// A narrow "width" conv in "dhfw" order over 128 channels: one pass reads
// 1 row of 130 floats (520 bytes) per channel, so the rules take the
// channels 63 at a time (32 KiB of L1 on the host target) and switch off
// streaming stores; an option sets the chunk, and a chunk of all channels is
// none.
// WIDTH-LABEL: func.func @chunked
// WIDTH: "rt3d.packed_conv3d"
// WIDTH-SAME: channel_chunk = 63 : i64
// WIDTH-SAME: loop_order = "dhfw"
// WIDTH-SAME: streaming_stores = false
// WIDTH-SAME: tile_sizes = array<i64: 1, 96>
// WIDTH-SAME: vector_dim = "width"
// CHUNK16-LABEL: func.func @chunked
// CHUNK16: channel_chunk = 16 : i64
// NOCHUNK-LABEL: func.func @chunked
// NOCHUNK-NOT: channel_chunk
// NOCHUNK: vector_dim = "width"
func.func @chunked(%x: tensor<1x128x3x4x130xf32>) -> tensor<1x2x3x4x128xf32> {
  %w = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %off = arith.constant dense<[0, 156000]> : tensor<2xi32>
  %starts = arith.constant dense<[0, 2]> : tensor<2xi32>
  %lanes = arith.constant dense<[0, 1]> : tensor<2xi32>
  %bias = arith.constant dense<0.0> : tensor<2xf32>
  %0 = "rt3d.packed_conv3d"(%x, %w, %off, %starts, %lanes, %bias) {activation = "relu", block_size = 2 : i64, channel_unroll = 1 : i64, dilations = array<i64: 1, 1, 1>, kernel_size = array<i64: 1, 1, 3>, padding_high = array<i64: 0, 0, 0>, padding_low = array<i64: 0, 0, 0>, strides = array<i64: 1, 1, 1>} : (tensor<1x128x3x4x130xf32>, tensor<4xf32>, tensor<2xi32>, tensor<2xi32>, tensor<2xi32>, tensor<2xf32>) -> tensor<1x2x3x4x128xf32>
  return %0 : tensor<1x2x3x4x128xf32>
}

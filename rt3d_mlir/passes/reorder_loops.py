"""rt3d-reorder-loops: choose the loop order and register tile of each packed conv.

Sets these attributes on every ``rt3d.packed_conv3d`` (those already set,
e.g. by ``rt3d-compile --tune`` from measurements, are kept unless an option
overrides them); the fixed rules are :func:`rule_schedule`, the alternatives
tuning times are :func:`candidate_schedules`:

* ``tile_sizes = array<i64: rows, cols>``: the output positions (rows of H x
  columns of W) whose accumulators stay in vector registers while the
  kernel walks a block's entries. Each entry then costs one weight-vector
  load per channel and ``rows x cols`` broadcast-FMAs. The default fills
  ``min(14, vector registers - 4)`` accumulators, leaving registers for the
  weight vector and addresses, and prefers column tiles that divide W.
* ``block_group``: "filters" tiles of 2 consecutive blocks with the same
  entries (dense convs) where twice the tile's accumulators fit with two
  weight vectors and the broadcast (32 registers): each broadcast input
  feeds an FMA of both blocks.
* ``vector_dim``: ``"filters"`` (a block's filters in the lanes, the
  default) or ``"width"`` (output columns in the lanes) when W has stride 1
  and either blocks are narrower than a vector (narrow kernel groups, see
  rt3d-pack-kernel-groups) or the plane has at least four whole vectors of
  columns (wide planes, where the filters form's per-tile scatter is the
  bottleneck: C3D's conv1a) unless a max pool after the conv can be
  computed in the "filters" kernel's epilogue (``rt3d-vectorize``; the tile
  is then fitted to whole pool windows) or the build computes in 16 bits
  (``precision`` bf16 or fp16: only "filters" kernels read the 16-bit
  blocked activations; int8: only they take int8 quads; a bf16 64 -> 64-channel 3x3x3 conv on 8x32x64
  positions took 7.4 ms as "filters" on AMX against 45 ms as "width").
  A "width" tile is ``rows`` rows by ``cols`` columns (``ceil(cols /
  lanes)`` vectors) for each of ``tile_filters`` of the block's filters
  at a time (the rules: all of them), within ``vector registers - 8``
  accumulators; ``vector_lanes`` records the vector length.
* ``channel_chunk``: for "width" kernels in "dhfw" order, the input
  channels each pass over a row group's blocks takes (partial sums kept in
  the output between passes), as many as keep the rows one pass reads
  within the target's L1 (:func:`rule_chunk`); none where all fit
  (``channel-chunk=N``; a chunk of all channels is none).
* ``streaming_stores``: non-temporal output stores for ``"width"`` kernels
  whose output is at least 4x the L2 size and whose rows are whole cache
  lines written in whole vectors (``streaming-stores=auto|on|off``).
* ``row_bands``: the output rows split into bands of whole row groups,
  each band a parallel task of its own, where the other task dimensions
  (batch, filter blocks, output depth) give fewer than ``MIN_TASKS``
  tasks (:func:`rule_row_bands`): a 2D model's convs have one output
  depth, and a conv of 16 filters was one task (``row-bands=N``).
* ``loop_order``: ``"fdhw"`` (filter blocks outermost: a block's packed
  weights stay in cache across all output positions) unless one block's
  weights exceed half the target's L2, then ``"dfhw"`` (depth outermost:
  the input slab stays in cache across blocks); for a temporal conv
  (``kD x 1 x 1``) and for narrow "width" blocks (kernel groups narrower
  than a vector) of a conv with more than one tap ``"dhfw"`` (depth, then
  row groups, then every block on the rows while they are in cache). The
  outer loops (with the batch) form the parallel task space split across
  threads.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from rt3d_mlir.dialect import load_dialect
from rt3d_mlir.dialect.rt3d import LOOP_ORDERS, VECTOR_DIMS, packed_conv3d_params
from rt3d_mlir.ir_matchers import constant_array, ops_named
from rt3d_mlir.kernel_packing import PRECISIONS
from rt3d_mlir.passes.framework import (
    Pass,
    register_pass,
    require,
    require_count,
    require_target,
)
from rt3d_mlir.passes.vectorize_pool import epilogue_candidate
from rt3d_mlir.targets import Target, get_target

MAX_ACCUMULATORS = 14
# Outputs this many times the L2 size are written with non-temporal stores.
CACHE_LINE = 64  # bytes
STREAMING_FACTOR = 4
# Convs with fewer tasks than this (batch x filter blocks x output depth) split their rows into bands:
# threads take tasks one at a time, and a few tasks leave them idle or unbalanced.
MIN_TASKS = 16


@dataclass
class ReorderLoopsOptions:
    target: str = "host"
    tile_rows: int = 0
    tile_cols: int = 0
    loop_order: str = ""
    accumulators: int = 0
    vector_dim: str = ""
    streaming_stores: str = "auto"
    tile_filters: int = 0  # "width" tiles: filters of a block per register tile (0 chooses)
    block_group: int = 0  # "filters" tiles: blocks sharing one (where their entries are the same)
    channel_chunk: int = 0  # "width" tiles in "dhfw" order: input channels per pass (0 chooses)
    row_bands: int = 0  # bands of output rows, each a parallel task (0 chooses)
    lanes: int = 0  # override the target's f32 vector lanes
    registers: int = 0  # override the target's vector register count
    precision: str = "fp32"  # of the build (rt3d-propagate-layout): 16 bits keep wide planes "filters"

    def __post_init__(self) -> None:
        require_target(self.target)
        require(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, got '{self.precision}'",
        )
        require(
            not self.loop_order or self.loop_order in LOOP_ORDERS,
            f"loop-order must be one of {', '.join(LOOP_ORDERS)}, got '{self.loop_order}'",
        )
        require(
            not self.vector_dim or self.vector_dim in VECTOR_DIMS,
            f"vector-dim must be one of {', '.join(VECTOR_DIMS)}, got '{self.vector_dim}'",
        )
        require(
            self.streaming_stores in ("auto", "on", "off"),
            f"streaming-stores must be auto, on or off, got '{self.streaming_stores}'",
        )
        require_count(self.tile_rows, "tile-rows", note=" (0 chooses)")
        require_count(self.tile_cols, "tile-cols", note=" (0 chooses)")
        require_count(self.accumulators, "accumulators", note=" (0 chooses)")
        require_count(self.tile_filters, "tile-filters", note=" (0 chooses)")
        require_count(self.block_group, "block-group", note=" (0 chooses)")
        require_count(self.channel_chunk, "channel-chunk", note=" (0 chooses; all channels: none)")
        require_count(self.row_bands, "row-bands", note=" (0 chooses)")
        require_count(self.lanes, "lanes", note=" (0: the target's)")
        require_count(self.registers, "registers", note=" (0: the target's)")


def default_accumulators(target: Target) -> int:
    return max(1, min(MAX_ACCUMULATORS, target.vector_registers - 4))


def choose_tile(out_h: int, out_w: int, accumulators: int) -> tuple[int, int]:
    """(rows, cols) of the register tile for an ``out_h x out_w`` output plane."""
    if out_w >= accumulators:
        best = max(
            range(max(1, math.ceil(accumulators / 2)), accumulators + 1),
            key=lambda cols: ((out_w // cols) * cols, cols),
        )
        return 1, best
    rows = max(1, min(out_h, accumulators // out_w))
    return rows, out_w


def fit_tile_to_pool(
    tile: tuple[int, int], window: tuple[int, int], out_h: int, out_w: int
) -> tuple[int, int]:
    """A register tile of at most ``tile``'s positions whose rows and columns are multiples of the
    (rows, columns) ``window`` of a max pool the kernel computes in its epilogue, so that each window
    lies in one tile (``tile`` itself if it already fits): the most positions, then the most of the
    plane covered by whole tiles, then the widest."""
    rows, cols = tile
    ph, pw = window
    if rows % ph == 0 and cols % pw == 0:
        return tile
    budget = max(rows * cols, ph * pw)
    candidates = [
        (r, c)
        for r in range(ph, out_h + 1, ph)
        for c in range(pw, out_w + 1, pw)
        if r * c <= budget
    ]
    return max(candidates, key=lambda t: (t[0] * t[1], (out_h // t[0]) * t[0] + (out_w // t[1]) * t[1], t[1]))


def fit_width_tile_to_pool(tile: tuple[int, int], window: tuple[int, int], lanes: int) -> tuple[int, int]:
    """A "width" tile (rows x columns) holding whole windows of a max pool computed in the epilogue
    (``window``: rows, and 1 or 2 columns; the pooled plane's rows divide the plane's): its rows a
    multiple of the window's, within the accumulators of ``tile`` (fewer vectors of ``lanes``
    columns where it takes more rows)."""
    rows, cols = tile
    ph = window[0]
    if rows % ph == 0:
        return tile
    fitted = ph * max(1, rows // ph)
    vectors = max(1, -(-cols // lanes) * rows // fitted)
    return fitted, min(cols, vectors * lanes)


def choose_vector_dim(params, out_w: int, lanes: int, pooled: bool = False, half: bool = False) -> str:
    """Which dimension goes in the vector lanes (see the module docstring); ``pooled``: a max pool
    after the conv can be computed in a "filters" kernel's epilogue; ``half``: the build computes
    in 16 bits, which only "filters" kernels do."""
    if params.strides[2] != 1:
        return "filters"
    if params.block_size < lanes:
        if out_w <= lanes // 2 and lanes % params.block_size == 0:
            # rows of half a vector or less: "width" would leave most lanes empty (4x4 KGS, C3D's
            # 7x7 conv5: 95-97 GFLOP/s as "width", 156-158 interleaved; at 14 columns and more
            # "width" stays ahead, 203-224 against 171-210)
            return "interleaved"
        return "width"
    if out_w % lanes == 0 and out_w >= 4 * lanes and not pooled and not half:
        # wide planes: the "filters" kernel's transposing store of the whole plane is the limit;
        # with the pool in its epilogue it stores a quarter of it (or less) and no pool runs
        return "width"
    return "filters"


def choose_interleaved_tile(out_h: int, out_w: int, run: int, budget: int) -> tuple[int, int]:
    """(rows, cols) of an "interleaved" tile: ``rows x ceil(cols / run)`` accumulators (each the
    block's filters at ``run`` consecutive columns) within ``budget``, column tiles dividing W
    where they can."""
    runs = -(-out_w // run)
    if runs <= budget:
        return max(1, min(out_h, budget // runs)), out_w
    best = max(
        range(max(1, budget // 2), budget + 1),
        key=lambda count: ((out_w // (count * run)) * count * run, count),
    )
    return 1, best * run


def choose_width_tile(out_h: int, out_w: int, filters: int, lanes: int, budget: int) -> tuple[int, int]:
    """(rows, cols) of a "width" tile: ``filters x rows x ceil(cols/lanes)`` accumulators."""
    vectors = min(-(-out_w // lanes), max(1, budget // filters))
    rows = max(1, min(out_h, budget // (filters * vectors)))
    return rows, min(out_w, vectors * lanes)


@dataclass(frozen=True)
class Schedule:
    """One convolution's schedule: the attributes rt3d-reorder-loops sets (but streaming stores)."""

    vector_dim: str
    loop_order: str
    tile_sizes: tuple[int, int]
    vector_lanes: int  # the vector length: the target's lanes ("width") or the block size ("filters")
    tile_filters: int  # the filters of a block a register tile holds (the block's: "filters")
    block_group: int = 1  # "filters": consecutive blocks sharing one register tile
    channel_chunk: int = 0  # "width" in "dhfw" order: input channels per pass over the blocks (0: all)
    row_bands: int = 1  # bands of output rows, each a parallel task

    def set_on(self, op: ir.Operation) -> None:
        i64 = ir.IntegerType.get_signless(64)
        op.attributes["vector_dim"] = ir.StringAttr.get(self.vector_dim)
        op.attributes["loop_order"] = ir.StringAttr.get(self.loop_order)
        op.attributes["tile_sizes"] = ir.DenseI64ArrayAttr.get(list(self.tile_sizes))
        op.attributes["vector_lanes"] = ir.IntegerAttr.get(i64, self.vector_lanes)
        op.attributes["tile_filters"] = ir.IntegerAttr.get(i64, self.tile_filters)
        op.attributes["block_group"] = ir.IntegerAttr.get(i64, self.block_group)
        if self.channel_chunk:
            op.attributes["channel_chunk"] = ir.IntegerAttr.get(i64, self.channel_chunk)
        elif "channel_chunk" in op.attributes:
            del op.attributes["channel_chunk"]
        if self.row_bands > 1:
            op.attributes["row_bands"] = ir.IntegerAttr.get(i64, self.row_bands)
        elif "row_bands" in op.attributes:
            del op.attributes["row_bands"]

    def describe(self) -> str:
        rows, cols = self.tile_sizes
        text = f"{self.vector_dim}/{self.loop_order}/{rows}x{cols}/{self.vector_lanes}/f{self.tile_filters}"
        text += f"/g{self.block_group}" if self.block_group > 1 else ""
        text += f"/c{self.channel_chunk}" if self.channel_chunk else ""
        return text + (f"/b{self.row_bands}" if self.row_bands > 1 else "")


def _largest_block_bytes(op: ir.Operation, params) -> int:
    starts = constant_array(op.operands[3])
    largest = int(np.diff(starts).max()) if starts is not None and len(starts) > 1 else 0
    return largest * params.channel_unroll * params.block_size * 4


def choose_loop_order(op: ir.Operation, params, dim: str, target: Target) -> str:
    """The loop order the fixed rules pick (see the module docstring)."""
    order = "fdhw" if _largest_block_bytes(op, params) <= target.l2_bytes // 2 else "dfhw"
    k_d, k_h, k_w = params.kernel_size
    if k_d > 1 and k_h * k_w == 1:
        # a temporal conv uses each input plane once per output depth: rows outermost, so
        # every block reads a row group while it is in cache (R(2+1)D's (3,1,1) convs ran
        # 20-28 % faster than with blocks outermost; 3x3x3 convs 5-7 % slower)
        order = "dhfw"
    if dim in ("width", "interleaved") and params.block_size < target.f32_lanes and k_d * k_h * k_w > 1:
        # narrow blocks (a kernel group each) of a conv with a window: every block would
        # stream the input slab again; rows outermost, all blocks use a row group while
        # it is in cache (with 4x4 KGS: C3D 205 -> 157 ms, R(2+1)D-18 246 -> 221 ms;
        # X3D-S's 1x1x1 convs gained nothing measurable, so they keep fdhw)
        order = "dhfw"
    return order


def can_group_blocks(op: ir.Operation, group: int) -> bool:
    """Whether every whole run of ``group`` consecutive blocks of ``op`` has the same entries (same
    kernel positions and channels: dense convs, and blocks the pruning left alike), so they can
    share a "filters" register tile (``block_group``; a last, partial run keeps a tile of its own)."""
    if group == 1:
        return True
    starts, offsets = constant_array(op.operands[3]), constant_array(op.operands[2])
    if starts is None or offsets is None or len(starts) - 1 < group:
        return False
    # a last, partial run gets a tile of its own
    for first in range(0, (len(starts) - 1) // group * group, group):
        lead = offsets[starts[first] : starts[first + 1]]
        for b in range(first + 1, first + group):
            if not np.array_equal(offsets[starts[b] : starts[b + 1]], lead):
                return False
    return True


def rule_block_group(op: ir.Operation, tile: tuple[int, int], target: Target) -> int:
    """Two blocks per "filters" tile where their entries match and 2 x the tile's accumulators, the
    two weight vectors and the broadcast fit the registers (dense C3D: 275 -> 236 ms, its big
    layers from 285-313 to 355-379 GFLOP/s on 2 threads, at this machine's FMA peak), else one."""
    if 2 * tile[0] * tile[1] + 3 <= target.vector_registers and can_group_blocks(op, 2):
        return 2
    return 1


def valid_chunk(op: ir.Operation, schedule: Schedule, chunk: int) -> int:
    """``chunk`` input channels per pass as ``op`` can take it under ``schedule``: rounded down to a
    multiple of the channel unroll; 0 (none) unless "width" in "dhfw" order with two chunks or more."""
    params = packed_conv3d_params(op)
    channels = ir.RankedTensorType(op.operands[0].type).shape[1]
    chunk = chunk // params.channel_unroll * params.channel_unroll
    if schedule.vector_dim != "width" or schedule.loop_order != "dhfw" or not chunk or chunk >= channels:
        return 0
    return chunk


def rule_chunk(op: ir.Operation, schedule: Schedule, target: Target) -> int:
    """Input channels per pass of a "width" kernel in "dhfw" order: as many as keep the rows one
    pass reads within the target's L1 (0: all channels fit). Measured on single 4x4 KGS layers at
    2.6x (2 threads, GFLOP/s without -> with): (3,1,1) 256->256 on 8x32x32 121 -> 164,
    144->64 on 16x56x56 88 -> 102, (1,3,3) 64->144 on 16x56x56 190 -> 210, 3x3x3 256->256 on
    8x28x28 204 -> 220."""
    if schedule.vector_dim != "width" or schedule.loop_order != "dhfw":
        return 0
    params = packed_conv3d_params(op)
    x_shape = ir.RankedTensorType(op.operands[0].type).shape
    _, sh, _ = params.strides
    rows = (schedule.tile_sizes[0] - 1) * sh + (params.kernel_size[1] - 1) * params.dilations[1] + 1
    width = x_shape[4] + params.padding_low[2] + params.padding_high[2]
    per_channel = params.kernel_size[0] * rows * width * 4  # bytes of input rows one channel adds
    return target.l1d_bytes // per_channel


def rule_row_bands(op: ir.Operation, schedule: Schedule) -> int:
    """Bands of output rows (each a task) so that ``op`` has at least ``MIN_TASKS`` tasks, at most
    one per row group of ``schedule``'s tile: 1 where the batch, the filter blocks (block groups)
    and the output depth give as many. Measured on the YOLO-style detector's 2D convs (2 threads):
    its 16-filter stem ran as one task, no faster on 2 threads than on 1."""
    out_shape = ir.RankedTensorType(op.results[0].type).shape
    starts = constant_array(op.operands[3])
    if starts is None:
        return 1
    units = -(-(len(starts) - 1) // schedule.block_group)
    tasks = out_shape[0] * out_shape[2] * (1 if schedule.loop_order == "dhfw" else units)
    row_groups = -(-out_shape[3] // schedule.tile_sizes[0])
    if tasks >= MIN_TASKS:
        return 1
    return max(1, min(row_groups, -(-MIN_TASKS // tasks)))


def _width_budget(filters: int, target: Target) -> int:
    """Accumulators of a "width" tile of ``filters`` filters: the registers less 8 (at least one
    vector per filter)."""
    return max(filters, target.vector_registers - 8)


def rule_schedule(
    op: ir.Operation, target: Target, accumulators: int, vector_dim: str = "", loop_order: str = "",
    half: bool = False,
) -> Schedule:
    """The schedule of the fixed rules, keeping what ``op`` already sets; ``vector_dim`` and
    ``loop_order`` (if given) override both; ``half``: the build computes in 16 bits."""
    params = packed_conv3d_params(op)
    out_shape = ir.RankedTensorType(op.results[0].type).shape
    out_h, out_w = out_shape[3], out_shape[4]
    preset = "vector_dim" in op.attributes
    pool = epilogue_candidate(op)
    pooled = pool is not None
    dim = vector_dim or (
        params.vector_dim if preset else choose_vector_dim(params, out_w, target.f32_lanes, pooled, half)
    )
    lanes = target.f32_lanes
    if dim in ("width", "interleaved") and params.strides[2] != 1:
        dim = "filters"
    if dim == "interleaved" and (lanes <= params.block_size or lanes % params.block_size):
        dim = "width"
    order = loop_order or params.loop_order or choose_loop_order(op, params, dim, target)
    # a tile (and vector length) set for one vector dimension means nothing for the other
    same_dim = not preset or params.vector_dim == dim
    kept_tile = params.tile_sizes if same_dim else None
    if dim == "width":
        lanes = params.vector_lanes if preset and same_dim and params.vector_lanes else target.f32_lanes
        filters = params.block_size
        if same_dim and params.tile_filters:
            filters = min(params.tile_filters, filters)
        budget = _width_budget(filters, target)
        tile = kept_tile or choose_width_tile(out_h, out_w, filters, lanes, budget)
        if pool is not None and not kept_tile and pool[1].window[2] <= 2:  # whole pool windows in a tile
            tile = fit_width_tile_to_pool(tile, pool[1].window[1:], lanes)  # type: ignore[arg-type]
    elif dim == "interleaved":
        lanes = params.vector_lanes if preset and same_dim and params.vector_lanes else target.f32_lanes
        filters = params.block_size
        tile = kept_tile or choose_interleaved_tile(out_h, out_w, lanes // filters, _width_budget(1, target))
    else:
        lanes = filters = params.block_size
        tile = kept_tile or choose_tile(out_h, out_w, accumulators)
        if pool is not None and not kept_tile:  # whole pool windows in a tile
            tile = fit_tile_to_pool(tile, pool[1].window[1:], out_h, out_w)  # type: ignore[arg-type]
    group = 1
    if dim == "filters":
        group = params.block_group if preset and same_dim and params.block_group else rule_block_group(
            op, tile, target
        )
    schedule = Schedule(dim, order, tile, lanes, filters, group)  # type: ignore[arg-type]
    if preset and same_dim and params.channel_chunk:
        chunk = params.channel_chunk
    else:
        chunk = rule_chunk(op, schedule, target)
    schedule = dataclasses.replace(schedule, channel_chunk=valid_chunk(op, schedule, chunk))
    if preset and same_dim and params.row_bands:
        return dataclasses.replace(schedule, row_bands=params.row_bands)
    return dataclasses.replace(schedule, row_bands=rule_row_bands(op, schedule))


def candidate_schedules(
    op: ir.Operation, target: Target, accumulators: int, half: bool = False
) -> list[Schedule]:
    """The schedules worth timing for ``op`` (one without schedule attributes), the fixed rules'
    first (``half``: for a 16-bit build): for each vector dimension, the rules' tile in every loop
    order and a smaller tile (half the registers) in the rules' order; for "width" also half-length
    vectors when a row fits, and in "dhfw" order each with and without channel chunks."""
    params = packed_conv3d_params(op)
    out_shape = ir.RankedTensorType(op.results[0].type).shape
    out_h, out_w = out_shape[3], out_shape[4]
    found = [rule_schedule(op, target, accumulators, half=half)]
    dims = ["filters", "width"] if params.strides[2] == 1 else ["filters"]
    narrow = params.block_size < target.f32_lanes and target.f32_lanes % params.block_size == 0
    if params.strides[2] == 1 and narrow:
        dims.append("interleaved")
    for dim in dims:
        rule = rule_schedule(op, target, accumulators, vector_dim=dim)
        found += [dataclasses.replace(rule, loop_order=order) for order in LOOP_ORDERS]
        if dim == "filters":
            block = params.block_size
            tiles = [(choose_tile(out_h, out_w, max(1, accumulators // 2)), block, block)]
            # one block per tile, and two (same entries) where the rules give one
            other = 1 if rule.block_group > 1 else rule_block_group(op, rule.tile_sizes, target)
            if other != rule.block_group:
                found.append(dataclasses.replace(rule, block_group=other))
        elif dim == "interleaved":
            run = rule.vector_lanes // params.block_size
            half = choose_interleaved_tile(out_h, out_w, run, _width_budget(1, target) // 2)
            tiles = [(half, rule.vector_lanes, params.block_size)]
        else:
            block, budget = params.block_size, _width_budget(params.block_size, target)
            tiles = [(choose_width_tile(out_h, out_w, block, rule.vector_lanes, budget // 2),
                      rule.vector_lanes, block)]
            half = target.f32_lanes // 2
            if half >= 4 and out_w <= half:
                tiles.append((choose_width_tile(out_h, out_w, block, half, budget), half, block))
            # wide blocks: a few of the block's filters per tile, so each input vector feeds more
            # FMAs per load (4 filters x 6 vectors: 10 loads for 24 FMAs; 16 x 1: 17 for 16)
            for filters in (4, 8):
                if filters < block:
                    lanes = rule.vector_lanes
                    tile = choose_width_tile(out_h, out_w, filters, lanes, _width_budget(filters, target))
                    tiles.append((tile, lanes, filters))
        found += [
            dataclasses.replace(rule, tile_sizes=tile, vector_lanes=lanes, tile_filters=filters)
            for tile, lanes, filters in tiles
        ]
    # every "width" candidate in "dhfw" order with the rules' channel chunks for its tile, and without
    chunked = []
    for schedule in found:
        chunk = valid_chunk(op, schedule, rule_chunk(op, schedule, target))
        chunked.append(dataclasses.replace(schedule, channel_chunk=chunk))
        if chunk:
            chunked.append(dataclasses.replace(schedule, channel_chunk=0))
    unique: list[Schedule] = []
    for schedule in chunked:
        schedule = dataclasses.replace(schedule, row_bands=rule_row_bands(op, schedule))
        if schedule not in unique:
            unique.append(schedule)
    return unique


@register_pass
class ReorderLoops(Pass):
    name = "rt3d-reorder-loops"
    summary = "Choose loop order and register tile sizes of rt3d.packed_conv3d for the target"
    Options = ReorderLoopsOptions

    def run(self, module: ir.Operation) -> None:
        load_dialect(module.context)
        opts = self.options
        target = get_target(opts.target)
        if opts.lanes:
            target = dataclasses.replace(target, vector_bits=32 * opts.lanes)
        if opts.registers:
            target = dataclasses.replace(target, vector_registers=opts.registers)
        accumulators = opts.accumulators or default_accumulators(target)
        for op in ops_named(module, "rt3d.packed_conv3d"):
            self._schedule(op, target, accumulators)

    def _schedule(self, op: ir.Operation, target: Target, accumulators: int) -> None:
        opts = self.options
        schedule = rule_schedule(
            op, target, accumulators, opts.vector_dim, opts.loop_order, half=opts.precision != "fp32"
        )
        if opts.lanes and schedule.vector_dim == "width":
            schedule = dataclasses.replace(schedule, vector_lanes=opts.lanes)
        if opts.block_group and schedule.vector_dim == "filters":
            # where the blocks' entries differ (or the count is not a multiple), one block per tile
            group = opts.block_group if can_group_blocks(op, opts.block_group) else 1
            schedule = dataclasses.replace(schedule, block_group=group)
        if opts.tile_filters and schedule.vector_dim == "width":
            block = packed_conv3d_params(op).block_size
            schedule = dataclasses.replace(schedule, tile_filters=min(opts.tile_filters, block))
        if opts.channel_chunk:
            chunk = valid_chunk(op, schedule, opts.channel_chunk)
            schedule = dataclasses.replace(schedule, channel_chunk=chunk)
        out_shape = ir.RankedTensorType(op.results[0].type).shape
        rows, cols = schedule.tile_sizes
        rows = min(opts.tile_rows or rows, out_shape[3])
        cols = min(opts.tile_cols or cols, out_shape[4])
        schedule = dataclasses.replace(schedule, tile_sizes=(rows, cols))
        if not opts.block_group and 2 * rows * cols + 3 > target.vector_registers:
            schedule = dataclasses.replace(schedule, block_group=1)  # a larger tile left no room
        overridden = opts.tile_rows or opts.block_group or opts.loop_order or opts.vector_dim
        if opts.row_bands:  # at most one band per row group
            bands = min(opts.row_bands, -(-out_shape[3] // rows))
            schedule = dataclasses.replace(schedule, row_bands=bands)
        elif "row_bands" not in op.attributes or overridden:  # the rule, for the final tile
            schedule = dataclasses.replace(schedule, row_bands=rule_row_bands(op, schedule))
        schedule.set_on(op)
        lanes = schedule.vector_lanes
        out_bytes = 4
        for size in out_shape:
            out_bytes *= size
        streaming = {
            "on": True,
            "off": False,
            # only whole, aligned cache lines: a non-temporal store of part of a line (rows of
            # 40 floats, a masked tail) made a 1x1x1 conv 8x slower than with plain stores
            "auto": schedule.vector_dim == "width"
            and out_bytes >= STREAMING_FACTOR * target.l2_bytes
            and (out_shape[4] * 4) % CACHE_LINE == 0
            and cols % lanes == 0,
        }[opts.streaming_stores]
        # partial sums of channel chunks are read back: no streaming stores
        op.attributes["streaming_stores"] = ir.BoolAttr.get(streaming and not schedule.channel_chunk)

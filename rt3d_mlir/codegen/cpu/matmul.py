"""The CPU kernel of a fully connected layer (called by ``rt3d-vectorize-matmul``).

At batch 1 a fully connected layer is a matrix-vector product bound by
reading the weights, so the kernel streams them once, in the order it uses
them: packed ``[N/B][K][B]`` (``B`` = vector lanes, ``N`` padded with zero
columns), one task per block of ``B`` outputs and row of ``A``, with
``unroll`` independent accumulators over ``K`` to hide FMA latency.
With bf16 or f16 weights (``precision=bf16|fp16``: the same order, half the
bytes streamed) each weight vector is widened to f32 as it is loaded; the input
and the accumulators stay f32. With int8 weights (``precision=int8``, a layer
of the int8 scheme: a quarter of the bytes) each is converted to f32 as it is
loaded and the block's sums are multiplied by its outputs' weight scales
once, before they are stored (the input is already on its int8 grid, in f32).
"""

from __future__ import annotations

import numpy as np

from rt3d_mlir.codegen.cpu.kernel import TASK, kernel_module, memref_type
from rt3d_mlir.codegen.text import KernelText


def pack_matmul_weights(weight: np.ndarray, lanes: int) -> np.ndarray:
    """``W[N, K]`` to ``[ceil(N/lanes)][K][lanes]`` (zero columns pad N)."""
    n, k = weight.shape
    blocks = -(-n // lanes)
    padded = np.zeros((blocks * lanes, k), dtype=np.float32)
    padded[:n] = weight
    return np.ascontiguousarray(padded.reshape(blocks, lanes, k).transpose(0, 2, 1)).reshape(-1)


def matmul_kernel_text(
    kernel: str, dispatch: str, m: int, k_dim: int, n: int, lanes: int, unroll: int,
    weights_element: str = "f32",
) -> str:
    """The kernel; ``weights_element``: f32, i16 (bf16 bit patterns of the packed weights), f16 or
    i8 (int8 weights, with a ``%scales`` argument: each output's weight scale)."""
    blocks = -(-n // lanes)
    vec = f"vector<{lanes}xf32>"
    kt = KernelText()
    t = TASK
    row = kt.op(f"arith.divui {t}, {kt.const(blocks)} : index")
    block = kt.op(f"arith.remui {t}, {kt.const(blocks)} : index")
    a_base = kt.index((row, k_dim))
    w_base = kt.index((block, k_dim * lanes))
    zero = kt.vconst(0.0, lanes, "f32")
    a_type = memref_type(m * k_dim, "f32")
    w_type = memref_type(blocks * k_dim * lanes, weights_element)

    def load_weights(at: str) -> str:
        if weights_element == "f32":
            return kt.op(f"vector.load %w[{at}] : {w_type}, {vec}")
        narrow = kt.op(f"vector.load %w[{at}] : {w_type}, vector<{lanes}x{weights_element}>")
        if weights_element == "i8":
            return kt.op(f"arith.sitofp {narrow} : vector<{lanes}xi8> to {vec}")
        if weights_element == "i16":
            narrow = kt.op(f"vector.bitcast {narrow} : vector<{lanes}xi16> to vector<{lanes}xbf16>")
        half = "bf16" if weights_element == "i16" else weights_element
        return kt.op(f"arith.extf {narrow} : vector<{lanes}x{half}> to {vec}")

    unroll = max(1, min(unroll, k_dim))
    full = (k_dim // unroll) * unroll
    accs = [zero] * unroll
    if full:
        kk = kt.fresh("k")
        names = [kt.fresh("acc") for _ in range(unroll)]
        results = kt.fresh("sum")
        inits = ", ".join(f"{a} = {zero}" for a in names)
        header = (
            f"{results}:{unroll} = scf.for {kk} = {kt.const(0)} to {kt.const(full)} step {kt.const(unroll)} "
            f"iter_args({inits}) -> ({', '.join([vec] * unroll)}) {{"
        )
        with kt.region(header):
            updated = []
            for u in range(unroll):
                a_at = kt.index((a_base, 1), (kk, 1), (u, 1))
                a = kt.op(f"memref.load %a[{a_at}] : {a_type}")
                a_vec = kt.op(f"vector.broadcast {a} : f32 to {vec}")
                w = load_weights(kt.index((w_base, 1), (kk, lanes), (u * lanes, 1)))
                updated.append(kt.op(f"vector.fma {a_vec}, {w}, {names[u]} : {vec}"))
            kt.emit(f"scf.yield {', '.join(updated)} : {', '.join([vec] * unroll)}")
        accs = [f"{results}#{u}" for u in range(unroll)]
    for kk in range(full, k_dim):  # the remainder, unrolled
        a_at = kt.index((a_base, 1), (kk, 1))
        a = kt.op(f"memref.load %a[{a_at}] : {a_type}")
        a_vec = kt.op(f"vector.broadcast {a} : f32 to {vec}")
        w = load_weights(kt.index((w_base, 1), (kk * lanes, 1)))
        slot = kk % unroll
        accs[slot] = kt.op(f"vector.fma {a_vec}, {w}, {accs[slot]} : {vec}")
    total = accs[0]
    for acc in accs[1:]:
        total = kt.op(f"arith.addf {total}, {acc} : {vec}")
    first = kt.index((block, lanes))
    scales_type = memref_type(blocks * lanes, "f32")
    if weights_element == "i8":
        scales = kt.op(f"vector.load %scales[{first}] : {scales_type}, {vec}")
        total = kt.op(f"arith.mulf {total}, {scales} : {vec}")
    remaining = kt.op(f"arith.subi {kt.const(n)}, {first} : index")
    mask = kt.op(f"vector.create_mask {remaining} : vector<{lanes}xi1>")
    out_at = kt.index((row, n), (first, 1))
    kt.emit(
        f"vector.maskedstore %out[{out_at}], {mask}, {total} : "
        f"{memref_type(m * n, 'f32')}, vector<{lanes}xi1>, {vec}"
    )
    args = [("%a", a_type), ("%w", w_type), ("%out", memref_type(m * n, "f32"))]
    if weights_element == "i8":
        args.insert(2, ("%scales", scales_type))
    flops = 2 * m * n * k_dim
    return kernel_module(kernel, dispatch, args, m * blocks, kt, flops=flops, dense_flops=flops)

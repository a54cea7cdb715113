"""The frame every GPU kernel shares: a ``gpu.module`` with one ``gpu.func`` over flat buffers.

Every shape, stride and buffer offset is a constant of the kernel, so a
dispatch needs no push constants. Buffers are bound in argument order
(descriptor set 0, binding = argument index) as flat static memrefs; the
last binding is the one the kernel writes. Most kernels give each
invocation one point of a linear iteration space of ``points`` elements,
split into workgroups of ``WORKGROUP`` invocations laid out on a 2-D grid
(Vulkan guarantees only 65535 workgroups per dimension), and guard every
grid axis, so a grid larger than the kernel was built for stays in bounds.

int8 kernels sum dot products of four signed bytes packed in 32-bit words
(:meth:`GpuKernel.dot4x8`) through a function of the ``gpu.module``,
:data:`DOT4X8`, written in plain integer arithmetic (the reference, and
what runs if nothing replaces it); lowering to SPIR-V gives it the body of
one integer dot product instruction (``OpSDot``, SPV_KHR_integer_dot_product,
:func:`rt3d_mlir.backend.spirv.kernels_to_spirv`), which MLIR's conversion
cannot produce from arith.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rt3d_mlir.codegen.text import KernelText

WORKGROUP = 64
MAX_GROUPS_X = 32768
DOT4X8 = "rt3d_dot4x8_acc"  # (a: i32, b: i32, acc: i32) -> i32: acc + the dot of a's and b's signed bytes


def signed_byte(k: KernelText, word: str, byte: int) -> str:
    """Byte ``byte`` (0: the lowest) of i32 ``word``, sign-extended to i32 by two shifts."""
    up = k.op(f"arith.shli {word}, {k.const(24 - 8 * byte, 'i32')} : i32") if byte < 3 else word
    return k.op(f"arith.shrsi {up}, {k.const(24, 'i32')} : i32")


def _dot4x8_function() -> str:
    """:data:`DOT4X8` in integer arithmetic: each byte sign-extended."""
    k = KernelText()
    total = "%acc"
    for byte in range(4):
        products = [signed_byte(k, word, byte) for word in ("%a", "%b")]
        product = k.op(f"arith.muli {products[0]}, {products[1]} : i32")
        total = k.op(f"arith.addi {total}, {product} : i32")
    k.emit(f"func.return {total} : i32")
    return "\n".join(
        [f"  func.func @{DOT4X8}(%a: i32, %b: i32, %acc: i32) -> i32 {{", k.render(indent=2), "  }"]
    )


@dataclass(frozen=True)
class Binding:
    """One kernel argument: a flat buffer of ``count`` elements of ``element`` type."""

    count: int
    element: str = "f32"  # "f32", "f16", "i32", "vector<4xf32>", "vector<4xf16>" or "vector<4xi32>"

    @property
    def memref(self) -> str:
        return f"memref<{self.count}x{self.element}>"


@dataclass(frozen=True)
class Kernel:
    name: str
    text: str  # a gpu.module
    bindings: tuple[Binding, ...]
    groups: tuple[int, int, int]
    flops: int = 0  # 2 x multiply-adds executed (conv and matmul-like kernels)


def linear_grid(points: int) -> tuple[int, int, int]:
    groups = max(1, math.ceil(points / WORKGROUP))
    x = min(groups, MAX_GROUPS_X)
    return x, math.ceil(groups / x), 1


class GpuKernel(KernelText):
    """A kernel body over ``bindings`` (``%arg0`` ...), rendered as a ``gpu.module``."""

    def __init__(self, name: str, bindings: Sequence[Binding]) -> None:
        super().__init__()
        self.name = name
        self.bindings = tuple(bindings)
        self._dot4x8 = False

    def dot4x8(self, a: str, b: str, acc: str) -> str:
        """``acc`` plus the dot product of the four signed bytes of i32 ``a`` and of ``b``."""
        self._dot4x8 = True
        return self.op(f"func.call @{DOT4X8}({a}, {b}, {acc}) : (i32, i32, i32) -> i32")

    def load(self, arg: int, offset: str) -> str:
        return self.op(f"memref.load %arg{arg}[{offset}] : {self.bindings[arg].memref}")

    def store(self, value: str, arg: int, offset: str) -> None:
        self.emit(f"memref.store {value}, %arg{arg}[{offset}] : {self.bindings[arg].memref}")

    def unpadded(
        self, positions: Sequence[str], low: Sequence[int], sizes: Sequence[int], padded: Sequence[int]
    ) -> tuple[list[str], str | None]:
        """(the indices into a tensor of ``sizes`` of ``positions`` in its copy padded to ``padded``
        with ``low`` before, whether they all lie inside it: None where no axis is padded)."""
        indices, inside = [], None
        for pos, lo, size, full in zip(positions, low, sizes, padded, strict=True):
            if lo == 0 and size == full:
                indices.append(pos)
                continue
            shifted = self.op(f"arith.subi {pos}, {self.const(lo)} : index") if lo else pos
            # unsigned compare: a negative shifted index wraps to a huge value
            test = self.op(f"arith.cmpi ult, {shifted}, {self.const(size)} : index")
            inside = test if inside is None else self.op(f"arith.andi {inside}, {test} : i1")
            indices.append(shifted)
        return indices, inside

    def store_inside(
        self, inside: str | None, value: Callable[[], str], fill: str, element: str, arg: int, offset: str
    ) -> None:
        """Store ``value()`` (emitted where it is used) at ``offset`` of binding ``arg`` if ``inside``
        (None: always), else ``fill``, both of type ``element``."""
        if inside is None:
            self.store(value(), arg, offset)
            return
        result = self.fresh()
        with self.region(f"{result} = scf.if {inside} -> ({element}) {{", "} else {"):
            self.emit(f"scf.yield {value()} : {element}")
        with self.region(None):
            self.emit(f"scf.yield {fill} : {element}")
        self.store(result, arg, offset)

    def linear_id(self, points: int) -> tuple[str, str]:
        """(linear invocation id, in-range flag) on the grid of :func:`linear_grid`."""
        gx = linear_grid(points)[0]
        bx = self.op("gpu.block_id x")
        by = self.op("gpu.block_id y")
        tx = self.op("gpu.thread_id x")
        linear = self.index((by, gx * WORKGROUP), (bx, WORKGROUP), (tx, 1))
        ok = self.op(f"arith.cmpi ult, {linear}, {self.const(points)} : index")
        return linear, ok

    def kernel(self, groups: tuple[int, int, int], flops: int = 0) -> Kernel:
        """The finished kernel, launched on ``groups`` workgroups."""
        args = ", ".join(f"%arg{i}: {b.memref}" for i, b in enumerate(self.bindings))
        abi = f"#spirv.entry_point_abi<workgroup_size = [{WORKGROUP}, 1, 1]>"
        text = "\n".join(
            [
                f"gpu.module @{self.name} {{",
                *([_dot4x8_function()] if self._dot4x8 else []),
                f"  gpu.func @{self.name}({args}) kernel attributes {{spirv.entry_point_abi = {abi}}} {{",
                self.render(indent=2),
                "    gpu.return",
                "  }",
                "}",
            ]
        )
        return Kernel(self.name, text, self.bindings, groups, flops)

"""One builder for kernel bodies written as MLIR text, on every target.

:class:`KernelText` hands out fresh SSA names, hoists constants (one
definition per value and type, printed through :mod:`rt3d_mlir.codegen.literals`),
and nests regions with a context manager, so generators never count
indentation::

    k = KernelText()
    with k.region(f"scf.for {i} = {k.const(0)} to {k.const(n)} step {k.const(1)} {{"):
        x = k.op(f"memref.load %input[{i}] : memref<{n}xf32>")

``render(indent)`` returns the constants followed by the body, indented.
Target-specific kernels (a CPU kernel function with a task loop, a GPU
``gpu.module``) wrap a body built here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from rt3d_mlir.codegen.literals import literal


class KernelText:
    """Builds the body of one kernel as MLIR text."""

    def __init__(self) -> None:
        self._lines: list[tuple[int, str]] = []  # (nesting depth, text)
        self._constants: dict[tuple[str, str], str] = {}  # (literal, type) -> SSA name
        self._index_values: dict[str, int] = {}  # SSA name of an index constant -> its value
        self._counter = 0
        self._depth = 0

    # -- names and lines -----------------------------------------------------

    def fresh(self, stem: str = "v") -> str:
        self._counter += 1
        return f"%{stem}_{self._counter}"

    def emit(self, line: str) -> None:
        self._lines.append((self._depth, line))

    def op(self, text: str, stem: str = "v") -> str:
        """Emit ``%name = text`` and return the fresh name."""
        name = self.fresh(stem)
        self.emit(f"{name} = {text}")
        return name

    @contextlib.contextmanager
    def region(self, header: str | None, footer: str | None = "}") -> Iterator[None]:
        """Emit ``header``, then the block's lines one level deeper, then ``footer``.

        ``header`` None continues a construct whose previous region ended
        with a footer that opens the next one (``} else {``).
        """
        if header is not None:
            self.emit(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if footer is not None:
            self.emit(footer)

    # -- constants -----------------------------------------------------------

    def _constant(self, key: tuple[str, str], stem: str) -> str:
        if key not in self._constants:
            self._constants[key] = f"%{stem}{len(self._constants)}"
        return self._constants[key]

    def const(self, value: int | float, type_: str = "index") -> str:
        """A scalar constant of MLIR type ``type_``."""
        name = self._constant((literal(value, type_), type_), "c")
        if type_ == "index":
            self._index_values[name] = int(value)
        return name

    def vconst(self, value: int | float, lanes: int, element: str) -> str:
        """A splat vector constant."""
        return self._constant((f"dense<{literal(value, element)}>", f"vector<{lanes}x{element}>"), "c")

    def vconst_list(self, values: Sequence[int | float], element: str) -> str:
        """A vector constant holding ``values``."""
        text = "dense<[" + ", ".join(literal(v, element) for v in values) + "]>"
        return self._constant((text, f"vector<{len(values)}x{element}>"), "c")

    # -- index arithmetic ----------------------------------------------------

    def index(self, *terms: tuple[str | int, int]) -> str:
        """``sum(value * scale)`` over (value, scale) terms, constants folded."""
        constant = 0
        parts: list[str] = []
        for value, scale in terms:
            if scale == 0:
                continue
            value = self._index_values.get(value, value) if isinstance(value, str) else value
            if isinstance(value, int):
                constant += value * scale
                continue
            parts.append(value if scale == 1 else self.op(f"arith.muli {value}, {self.const(scale)} : index"))
        if constant or not parts:
            parts.append(self.const(constant))
        total = parts[0]
        for part in parts[1:]:
            total = self.op(f"arith.addi {total}, {part} : index")
        return total

    def add(self, a: str, b: str) -> str:
        return self.index((a, 1), (b, 1))

    def mul(self, a: str, factor: int) -> str:
        return self.index((a, factor))

    def linearize(self, indices: Sequence[str], shape: Sequence[int], base: int = 0) -> str:
        """Row-major offset of ``indices`` in a tensor of ``shape``, plus ``base``."""
        terms: list[tuple[str | int, int]] = [(base, 1)]
        stride = 1
        for idx, size in reversed(list(zip(indices, shape, strict=True))):
            terms.append((idx, stride))
            stride *= size
        return self.index(*terms)

    def delinearize(self, linear: str, shape: Sequence[int]) -> list[str]:
        """Indices of a row-major ``linear`` offset into ``shape``."""
        out: list[str] = []
        rest = linear
        for i, size in enumerate(reversed(list(shape))):
            if i == len(shape) - 1:
                out.append(rest)
            elif size == 1:
                out.append(self.const(0))
            else:
                out.append(self.op(f"arith.remui {rest}, {self.const(size)} : index"))
                rest = self.op(f"arith.divui {rest}, {self.const(size)} : index")
        return list(reversed(out))

    # -- output ----------------------------------------------------------------

    def render(self, indent: int = 0) -> str:
        """The constants, then the body, each line indented by ``indent`` levels (two spaces)."""
        pad = "  " * indent
        constants = [f"{pad}{name} = arith.constant {text} : {type_}" for (text, type_), name in
                     self._constants.items()]
        body = [f"{pad}{'  ' * depth}{line}" for depth, line in self._lines]
        return "\n".join(constants + body)

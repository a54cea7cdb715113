"""Textual pass pipelines mixing rt3d passes with upstream MLIR passes.

``builtin.module(rt3d-recognize-kgs{group-shape=4x4}, canonicalize,
func.func(cse))`` becomes one ``PassManager``: consecutive upstream
elements are added as text, rt3d passes as Python callables, in order.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.passmanager import PassManager

from rt3d_mlir.errors import PipelineError
from rt3d_mlir.passes.framework import PASS_REGISTRY, Pass, PassFailure, parse_options


@dataclass(frozen=True)
class PipelineElement:
    text: str  # the element as written
    name: str  # pass or op-anchor name
    options: str | None  # text between braces
    nested: str | None  # text between parentheses (an op-anchored sub-pipeline)


def _split_top_level(text: str) -> list[str]:
    items, current, depth = [], "", 0
    for ch in text:
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise PipelineError(f"unbalanced brackets in pass pipeline '{text}'")
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    if depth != 0:
        raise PipelineError(f"unbalanced brackets in pass pipeline '{text}'")
    if current.strip():
        items.append(current.strip())
    return [i for i in items if i]


def _parse_element(text: str) -> PipelineElement:
    name_end = len(text)
    for i, ch in enumerate(text):
        if ch in "({":
            name_end = i
            break
    name = text[:name_end].strip()
    rest = text[name_end:].strip()
    options = nested = None
    if rest.startswith("{"):
        close = rest.index("}")
        options, rest = rest[1:close], rest[close + 1 :].strip()
    if rest.startswith("("):
        if not rest.endswith(")"):
            raise PipelineError(f"malformed pipeline element '{text}'")
        nested, rest = rest[1:-1], ""
    if rest or not name:
        raise PipelineError(f"malformed pipeline element '{text}'")
    return PipelineElement(text, name, options, nested)


def parse_pipeline(text: str) -> list[PipelineElement]:
    """Parse a module-level pipeline, with or without ``builtin.module(...)``."""
    text = text.strip()
    elements = [_parse_element(item) for item in _split_top_level(text)]
    if len(elements) == 1 and elements[0].name == "builtin.module" and elements[0].nested is not None:
        elements = [_parse_element(item) for item in _split_top_level(elements[0].nested)]
    for element in elements:
        if element.nested is not None and any(
            _parse_element(i).name in PASS_REGISTRY for i in _split_top_level(element.nested)
        ):
            raise PipelineError(
                f"rt3d passes run on builtin.module; do not nest them in '{element.name}(...)'"
            )
    return elements


def check_pipeline(text: str) -> None:
    """Parse a pipeline and check every rt3d pass's options, before any module exists."""
    for element in parse_pipeline(text):
        if element.name in PASS_REGISTRY:
            instantiate(element)


def instantiate(element: PipelineElement) -> Pass:
    cls = PASS_REGISTRY[element.name]
    return cls(parse_options(cls, element.options or ""))


class _PythonPassRunner:
    """Adapts an rt3d Pass to the PassManager's Python-callable interface."""

    def __init__(self, pass_: Pass, crashes: list[BaseException]) -> None:
        self.pass_ = pass_
        self.crashes = crashes

    def __call__(self, op: ir.Operation, external_pass) -> None:
        try:
            with op.context, op.location:
                self.pass_.run(op)
        except PassFailure as failure:
            (failure.location or op.location).emit_error(f"{self.pass_.name}: {failure}")
            external_pass.signal_pass_failure()
        except Exception as crash:  # a bug in the pass: keep it for the caller
            crash.__rt3d_traceback__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.crashes.append(crash)
            op.location.emit_error(f"{self.pass_.name}: internal error: {crash}")
            external_pass.signal_pass_failure()


def build_pass_manager(
    text: str, context: ir.Context, crashes: list[BaseException]
) -> PassManager:
    elements = parse_pipeline(text)
    pm = PassManager("builtin.module", context=context)
    upstream: list[str] = []

    def flush() -> None:
        if upstream:
            joined = ",".join(upstream)
            try:
                pm.add(joined)
            except ValueError as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else joined
                raise PipelineError(f"cannot parse pass pipeline '{joined}': {first}") from None
            upstream.clear()

    for element in elements:
        if element.name in PASS_REGISTRY:
            flush()
            pass_ = instantiate(element)
            pm.add(
                _PythonPassRunner(pass_, crashes),
                name=type(pass_).__name__,
                argument=pass_.name,
                description=pass_.summary,
            )
        else:
            upstream.append(element.text)
    flush()
    return pm


def run_pipeline(module: ir.Module | ir.Operation, text: str) -> None:
    """Run a pipeline on a module in place.

    Raises ``ir.MLIRError`` (with diagnostics) when a pass fails, and re-raises
    the exception of a pass that crashed.
    """
    op = module.operation
    crashes: list[BaseException] = []
    pm = build_pass_manager(text, op.context, crashes)
    try:
        pm.run(op)
    except ir.MLIRError:
        if crashes:
            raise crashes[0] from None
        raise

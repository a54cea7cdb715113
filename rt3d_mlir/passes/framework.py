"""Python-defined passes: a base class, typed options, and a registry by name.

A pass is a class with a ``name`` (its pipeline argument, e.g.
``rt3d-recognize-kgs``), a one-line ``summary``, an ``Options`` dataclass
whose fields are the pass options (``group-shape=4x4`` sets
``group_shape``), and ``run(module)`` which rewrites a ``builtin.module``.
Passes raise :class:`PassFailure` (with the op's location) to fail.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar

from torch_mlir import ir

from rt3d_mlir.errors import PipelineError


class PassFailure(Exception):
    """Raised by a pass; the pipeline reports it as an MLIR error at ``location``."""

    def __init__(self, message: str, location: ir.Location | None = None) -> None:
        super().__init__(message)
        self.location = location


@dataclasses.dataclass
class NoOptions:
    pass


class Pass:
    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any | None = None) -> None:
        self.options = options if options is not None else self.Options()

    def run(self, module: ir.Operation) -> None:  # pragma: no cover - interface
        raise NotImplementedError


PASS_REGISTRY: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass reachable by name from pipelines."""
    if cls.name in PASS_REGISTRY:
        raise RuntimeError(f"pass '{cls.name}' registered twice")
    PASS_REGISTRY[cls.name] = cls
    return cls


def _convert_option(pass_name: str, key: str, hint: Any, text: str) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        if hint is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on", ""):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            value = hint(text)
            if hint is float and not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError:
        raise PipelineError(
            f"pass '{pass_name}': option '{key}' expects {hint.__name__}, got '{text}'"
        ) from None
    raise PipelineError(f"pass '{pass_name}': option '{key}' has unsupported type {hint}")


class OptionError(ValueError):
    """An option value a pass cannot accept (raised by an Options class's ``__post_init__``)."""


def require(condition: bool, message: str) -> None:
    """Options validation: raise :class:`OptionError` with ``message`` unless ``condition``."""
    if not condition:
        raise OptionError(message)


def require_target(name: str) -> None:
    """Options validation: ``name`` is a code generation target."""
    from rt3d_mlir.targets import TARGETS

    require(name in TARGETS, f"target must be one of {', '.join(sorted(TARGETS))}, got '{name}'")


MAX_OPTION_INT = 1 << 30  # no count or size option is meaningful beyond this


def require_count(value: int, name: str, minimum: int = 0, note: str = "") -> None:
    """Options validation: an integer option in ``[minimum, MAX_OPTION_INT]``."""
    require(
        minimum <= value <= MAX_OPTION_INT,
        f"{name} must be between {minimum} and {MAX_OPTION_INT}{note}, got {value}",
    )


@dataclasses.dataclass
class TargetOptions:
    """The options of every pass that generates code for a target: which one, and its vector width
    (0: the target's). Options classes of such passes extend it."""

    target: str = "host"
    vector_width: int = 0

    def __post_init__(self) -> None:
        require_target(self.target)
        require_count(self.vector_width, "vector-width", note=" (0: the target's)")


def parse_options(cls: type[Pass], text: str) -> Any:
    """Parse ``key=value key2=value2`` (the part between braces) into Options.

    Options are validated here (each Options class checks its values in
    ``__post_init__``), so a bad value fails even when no op would match.
    """
    hints = typing.get_type_hints(cls.Options)
    fields = {f.name.replace("_", "-"): f.name for f in dataclasses.fields(cls.Options)}
    values: dict[str, Any] = {}
    for item in _split_option_text(text):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise PipelineError(f"pass '{cls.name}' has no option '{key}' (options: {known})")
        name = fields[key]
        values[name] = _convert_option(cls.name, key, hints[name], value.strip())
    try:
        return cls.Options(**values)
    except OptionError as err:
        raise PipelineError(f"pass '{cls.name}': {err}") from None


def _split_option_text(text: str) -> list[str]:
    """Split on whitespace outside quotes and braces."""
    items, current, depth, quote = [], "", 0, ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                current += ch
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "{[(":
            depth += 1
            current += ch
        elif ch in "}])":
            depth -= 1
            current += ch
        elif ch.isspace() and depth == 0:
            if current:
                items.append(current)
            current = ""
        else:
            current += ch
    if current:
        items.append(current)
    return items

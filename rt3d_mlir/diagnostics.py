"""MLIR error diagnostics kept instead of printed, for the one-line errors users see.

Used wherever MLIR runs on a user's model (torch-mlir's import, the compile
stages): :func:`kept_errors` collects the errors a context reports while it
is attached; each is a :class:`Reported` (message, location and, where a
note names it, the operation it is about).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from torch_mlir import ir

_CURRENT_OPERATION = re.compile(r'see current operation: (?:[^=]*= )?"?([a-z_]\w*\.[\w.]+)')


class Reported(NamedTuple):
    message: str
    location: object
    op: str  # the operation's name, or ""


def reported(diagnostic: ir.Diagnostic | ir.DiagnosticInfo) -> Reported:
    notes = " ".join(str(note.message) for note in diagnostic.notes)
    match = _CURRENT_OPERATION.search(notes)
    return Reported(str(diagnostic.message), diagnostic.location, match.group(1) if match else "")


@contextmanager
def kept_errors(context: ir.Context) -> Iterator[list[Reported]]:
    """The error diagnostics ``context`` reports inside the block (none of them is printed)."""
    errors: list[Reported] = []

    def keep(diagnostic: ir.Diagnostic) -> bool:
        if diagnostic.severity == ir.DiagnosticSeverity.ERROR:
            errors.append(reported(diagnostic))
        return True  # handled: not printed

    handler = context.attach_diagnostic_handler(keep)
    try:
        yield errors
    finally:
        handler.detach()

"""What every command-line tool shares: one-line errors, exit codes, atomic writes."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from typing import NoReturn

from rt3d_mlir.errors import Rt3dError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)


def run_tool(prog: str, body: Callable[[], int | None]) -> int:
    """Run a tool's body; turn failures into one stderr line and an exit code.

    Set ``RT3D_DEBUG=1`` to see the traceback of an internal error.
    """
    try:
        return int(body() or 0)
    except Rt3dError as err:
        sys.stderr.write(f"{prog}: error: {err}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug: still one line, with a way to see more
        if os.environ.get("RT3D_DEBUG"):
            traceback.print_exc()
        text = str(err).strip().splitlines()
        sys.stderr.write(
            f"{prog}: internal error: {type(err).__name__}: {text[0] if text else ''} "
            "(set RT3D_DEBUG=1 for a traceback)\n"
        )
        return EXIT_ERROR


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None
    if not shape:
        raise argparse.ArgumentTypeError("empty shape")
    return shape


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` only if it succeeded."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise Rt3dError(f"output directory '{directory}' does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".rt3d-", suffix=".partial", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


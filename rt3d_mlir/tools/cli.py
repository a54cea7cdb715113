"""What every command-line tool shares: one-line errors, exit codes, interrupts, argument types."""

from __future__ import annotations

import _thread
import argparse
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from rt3d_mlir.errors import Rt3dError, one_line

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(EXIT_USAGE)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so that every ``finally`` cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# The signals that arrived while a tool ran. Raised inside a callback from MLIR (a pass, a walk,
# a diagnostic handler), the signal's exception reaches the tool wrapped in a RuntimeError.
_received: list[int] = []


def _signal_exception(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _terminate(signum: int, _frame: object) -> None:
    _received.append(signum)
    raise _signal_exception(signum)


def raise_pending_signal() -> None:
    """Raise the exception of a signal that arrived while the tool ran but whose exception was
    lost on the way (swallowed by a library); tools call this between their steps."""
    if _received:
        raise _signal_exception(_received[0])


# While a tool runs with its handlers: only then is a lost signal delivered again (once the
# tool has returned, the handler would raise outside it).
_handling = False


def _interrupt_main_later(signum: int) -> None:
    time.sleep(0.01)
    if _handling:
        _thread.interrupt_main(signum)


def _redeliver_lost_signals(
    hook: Callable[[sys.UnraisableHookArgs], object],
) -> Callable[[sys.UnraisableHookArgs], None]:
    """An unraisable-exception hook: a signal whose handler ran inside a finalizer or a weakref
    callback raised where Python can only print the exception ("Exception ignored in ..."), and
    under a redirected stderr not even that; deliver the signal again, so that the handler raises
    once more at the next point of ordinary code. Other exceptions go to ``hook``."""

    def redeliver(unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)
            return
        # From another thread, a moment later: the main thread's handler then runs after this hook
        # returned (raised inside the hook, its exception would be lost again).
        signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
        _thread.start_new_thread(_interrupt_main_later, (signum,))

    return redeliver


@contextmanager
def _termination_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM/SIGHUP :class:`Terminated` in the main thread
    while the tool runs; each signal is also recorded in ``_received``. A signal's exception raised
    where Python cannot propagate it (a finalizer) is delivered again."""
    global _handling
    _received.clear()
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            previous[signum] = signal.signal(signum, _terminate)
        except ValueError:  # not the main thread: leave signals alone
            break
    previous_hook = sys.unraisablehook
    if previous:
        sys.unraisablehook = _redeliver_lost_signals(previous_hook)
        _handling = True
    try:
        yield
    finally:
        _handling = False
        sys.unraisablehook = previous_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_tool(prog: str, body: Callable[[], int | None]) -> int:
    """Run a tool's body; turn failures into one stderr line and an exit code.

    Ctrl-C, SIGTERM and SIGHUP unwind the body like an exception, so child
    processes are killed and temporary files removed (see
    :mod:`rt3d_mlir.fileio`, :mod:`rt3d_mlir.processes`); the exit status is
    then 128 + the signal number. Set ``RT3D_DEBUG=1`` to see the traceback
    of an internal error.
    """
    try:
        with _termination_raises():
            return int(body() or 0)
    except Rt3dError as err:
        sys.stderr.write(f"{prog}: error: {one_line(str(err))}\n")
        return EXIT_ERROR
    except Terminated as err:
        return _signalled(prog, err.signum)
    except KeyboardInterrupt:
        return _signalled(prog, signal.SIGINT)
    except Exception as err:  # a bug: still one line, with a way to see more
        if _received:  # a signal's exception, wrapped on its way out of an MLIR callback
            return _signalled(prog, _received[0])
        if os.environ.get("RT3D_DEBUG"):
            traceback.print_exc()
        text = str(err).strip().splitlines()
        sys.stderr.write(
            f"{prog}: internal error: {type(err).__name__}: {one_line(text[0] if text else '', 300)} "
            "(set RT3D_DEBUG=1 for a traceback)\n"
        )
        return EXIT_ERROR


def _signalled(prog: str, signum: int) -> int:
    if signum == signal.SIGINT:
        sys.stderr.write(f"{prog}: interrupted\n")
        return EXIT_INTERRUPTED
    sys.stderr.write(f"{prog}: terminated ({signal.Signals(signum).name})\n")
    return 128 + signum


MAX_DIMENSION = 1 << 31  # one tensor dimension; element counts are checked where shapes are used


def parse_shape(text: str) -> tuple[int, ...]:
    """A shape ``N,C,D,H,W`` (or ``NxCx...``) of positive integers."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None
    if not shape:
        raise argparse.ArgumentTypeError("empty shape")
    if any(d < 1 or d >= MAX_DIMENSION for d in shape):
        raise argparse.ArgumentTypeError(
            f"dimensions must be between 1 and {MAX_DIMENSION - 1}, got '{text}'"
        )
    return shape


def bounded_int(minimum: int, maximum: int = (1 << 31) - 1) -> Callable[[str], int]:
    """An argparse type: an integer in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be between {minimum} and {maximum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def bounded_float(
    minimum: float = -math.inf, maximum: float = math.inf, *, open_minimum: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[minimum, maximum]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got '{text}'")
        if value < minimum or value > maximum or (open_minimum and value == minimum):
            low = f"> {minimum:g}" if open_minimum else f">= {minimum:g}"
            high = f" and <= {maximum:g}" if math.isfinite(maximum) else ""
            raise argparse.ArgumentTypeError(f"must be {low}{high}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def duration(text: str) -> float:
    """An argparse type: a positive duration in seconds, written ``150ms``, ``0.15s`` or ``150``
    (milliseconds)."""
    stripped = text.strip().lower()
    scale = 1e-3
    if stripped.endswith("ms"):
        stripped = stripped[:-2]
    elif stripped.endswith("s"):
        stripped, scale = stripped[:-1], 1.0
    try:
        value = float(stripped) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 150ms or 0.15s, got '{text}'"
        ) from None
    if not math.isfinite(value) or value <= 0 or value > 3600:
        raise argparse.ArgumentTypeError(f"must be a duration > 0 and at most an hour, got '{text}'")
    return value


def reduction(text: str) -> float:
    """An argparse type: a reduction factor > 1, written ``3x`` or ``3``."""
    stripped = text.strip().lower().removesuffix("x")
    try:
        value = float(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a factor such as 3x, got '{text}'") from None
    if not math.isfinite(value) or value <= 1 or value > 1e6:
        raise argparse.ArgumentTypeError(f"must be a factor > 1, got '{text}'")
    return value


def group_shape(text: str) -> tuple[int, int]:
    """An argparse type: a kernel-group shape ``GFxGC``."""
    from rt3d_mlir.sparsity import parse_group_shape

    try:
        return parse_group_shape(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None

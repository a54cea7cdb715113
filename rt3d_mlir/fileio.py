"""Writing output files safely, and sealing files that are read back later.

One mechanism for every file a tool writes (artifacts, checkpoints, arrays,
reports): :func:`atomic_output` checks the destination, creates a unique
temporary file exclusively (``O_EXCL``, so a planted symlink is never
followed) in the destination's directory, lets the caller fill it, and
renames it onto the destination only when the caller succeeded. An error,
an interrupt (Ctrl-C, or SIGTERM under :func:`rt3d_mlir.tools.cli.run_tool`)
or a crash of the writer leaves no partial file. The destination must be a
new name or an existing regular file: a directory, a device node, a FIFO or
a symlink is refused with one line, never replaced.

:func:`seal` / :func:`unseal` frame bytes with a SHA-256 digest, so a file
that is read back (the pruning job's resume state) is known to be intact.

Imports only the standard library (the runtime uses it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator

from rt3d_mlir.errors import Rt3dError


class OutputError(Rt3dError):
    """An output path cannot be written (a directory, not a regular file, no such directory, ...)."""


def check_output_path(path: str | os.PathLike[str]) -> str:
    """The absolute path of a file a tool may create or replace, or an OutputError saying why not."""
    path = os.fspath(path)
    if not path:
        raise OutputError("the output path is empty")
    absolute = os.path.abspath(path)
    directory = os.path.dirname(absolute)
    try:
        info = os.lstat(absolute)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise OutputError(f"cannot write '{path}': {err.strerror}") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise OutputError(f"output '{path}' is a directory; give a file name")
        if stat.S_ISLNK(info.st_mode):
            raise OutputError(f"output '{path}' is a symbolic link; refusing to replace it")
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"output '{path}' exists and is not a regular file; refusing to replace it")
    if not os.path.isdir(directory):
        raise OutputError(f"output directory '{directory}' does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to directory '{directory}' (permission denied)")
    return absolute


def cache_directory() -> str:
    """Where rt3d-mlir keeps what it measured or built once (schedules, latency tables, the AArch64
    harness): ``$RT3D_CACHE_DIR``, else ``$XDG_CACHE_HOME/rt3d-mlir`` (``~/.cache/rt3d-mlir``)."""
    chosen = os.environ.get("RT3D_CACHE_DIR")
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rt3d-mlir")


def check_output_directory(path: str | os.PathLike[str]) -> str:
    """A directory a tool may write files into (created if missing), or an OutputError."""
    path = os.fspath(path)
    if os.path.lexists(path) and (os.path.islink(path) or not os.path.isdir(path)):
        raise OutputError(f"'{path}' exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create directory '{path}': {err.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to directory '{path}' (permission denied)")
    return os.path.abspath(path)


def _default_mode(executable: bool) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if executable else 0o666) & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, executable: bool = False) -> Iterator[str]:
    """Yield a fresh temporary path beside ``path``; on success it becomes ``path``.

    The temporary file exists (empty) when the block starts; a writer may
    overwrite or replace it. It gets the usual permissions (``0666`` or, with
    ``executable``, ``0777``, less the umask) before the rename.
    """
    absolute = check_output_path(path)
    directory, name = os.path.split(absolute)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=directory)
    except OSError as err:
        raise OutputError(f"cannot create a file in '{directory}': {err.strerror}") from None
    os.close(fd)
    try:
        yield tmp
        if not os.path.isfile(tmp) or os.path.islink(tmp):
            raise OutputError(f"writing '{path}' produced no file")
        os.chmod(tmp, _default_mode(executable))
        check_output_path(absolute)  # the destination may have changed meanwhile
        os.replace(tmp, absolute)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode())


# ----------------------------------------------------------------------------- sealed files

SEAL_MAGIC = b"rt3d-sealed 1 sha256 "
_DIGEST_HEX = 64


def seal(data: bytes) -> bytes:
    """``data`` behind a header holding its SHA-256 digest."""
    return SEAL_MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def unseal(data: bytes, source: str) -> bytes:
    """The payload of :func:`seal`'s output, or Rt3dError if the frame or the digest is wrong."""
    head = len(SEAL_MAGIC) + _DIGEST_HEX + 1
    if not data.startswith(SEAL_MAGIC) or len(data) < head or data[head - 1 : head] != b"\n":
        raise Rt3dError(f"'{source}' is not a sealed rt3d file (truncated or written by another tool)")
    expected = data[len(SEAL_MAGIC) : head - 1].decode("ascii", errors="replace")
    payload = data[head:]
    if hashlib.sha256(payload).hexdigest() != expected:
        raise Rt3dError(f"'{source}' is corrupt (its SHA-256 checksum does not match)")
    return payload


def read_npy(path: str | os.PathLike[str]):
    """A ``.npy`` array, read without unpickling anything; one clear error for a bad file."""
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise Rt3dError(f"cannot read '{os.fspath(path)}' as a .npy array: {err}") from None

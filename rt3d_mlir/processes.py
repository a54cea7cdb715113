"""Running child processes so that an interrupt leaves none behind.

Every external tool (clang, mlir-translate, qemu, the cross compiler) runs
in a session of its own; when the caller is interrupted (Ctrl-C, SIGTERM
turned into an exception by :func:`rt3d_mlir.tools.cli.run_tool`, or any
other exception) the whole process group is killed and reaped before the
exception goes on, so the tools a driver starts (clang's ld.lld) die too.

Imports only the standard library (the runtime uses it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence


def run_process(args: Sequence[str], *, text: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True)``, killing the child's process group if interrupted.

    Raises OSError when the program cannot be started.
    """
    process = subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=kwargs.pop("stdin", subprocess.DEVNULL),
        text=text,
        start_new_session=True,
        **kwargs,
    )
    try:
        stdout, stderr = process.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

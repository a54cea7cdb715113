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
import tempfile
import time
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


def run_processes(commands: Sequence[Sequence[str]], jobs: int) -> list[subprocess.CompletedProcess]:
    """Run ``commands`` with at most ``jobs`` at a time, each as :func:`run_process` does.

    Returns their completed processes in order (output as text); on any
    exception (an interrupt) every child's process group is killed and reaped
    first. Raises OSError when a program cannot be started.
    """
    pending = list(enumerate(commands))
    running: dict[int, tuple[subprocess.Popen, object, object]] = {}
    done: dict[int, subprocess.CompletedProcess] = {}
    try:
        while pending or running:
            while pending and len(running) < max(jobs, 1):
                index, args = pending.pop(0)
                out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
                process = subprocess.Popen(
                    list(args), stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
                )
                running[index] = (process, out, err)
            for index, (process, out, err) in list(running.items()):
                if process.poll() is None:
                    continue
                texts = []
                for stream in (out, err):
                    stream.seek(0)  # type: ignore[attr-defined]
                    texts.append(stream.read().decode(errors="replace"))  # type: ignore[attr-defined]
                    stream.close()  # type: ignore[attr-defined]
                done[index] = subprocess.CompletedProcess(process.args, process.returncode, *texts)
                del running[index]
            if running:
                time.sleep(0.01)
    except BaseException:
        for process, out, err in running.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            out.close()  # type: ignore[attr-defined]
            err.close()  # type: ignore[attr-defined]
        raise
    return [done[i] for i in range(len(commands))]


def peak_rss_mib() -> float:
    """This process's peak resident memory since it was exec'd, in MiB (``VmHWM``).

    ``ru_maxrss`` is not used where ``/proc`` is there: Linux carries the
    forking parent's peak across ``exec``, so a child started by a large
    process (a benchmark holding models) would report at least the parent's.
    Child processes (clang) are not included.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

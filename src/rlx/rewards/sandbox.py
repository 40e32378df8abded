"""Run model-generated Python in a separate, limited process (the only place rlx executes such code).

    res = run_python("print(sum(range(10)))", limits=SandboxLimits(wall_seconds=2))
    res.ok, res.stdout        # True, "45\\n"

Each call gets:

* a **separate process** (`python -I -S`: no user site, no site-packages, environment emptied), in a
  new session so the whole process group is killed on timeout;
* a **fresh temporary directory** as its working directory, deleted afterwards; files may be
  written only inside it (an audit hook refuses `open` for writing elsewhere);
* **resource limits** (setrlimit): CPU seconds, address space, file size (which also caps stdout and
  stderr, written to files in the directory), no new processes (RLIMIT_NPROC 0 plus the audit hook
  refusing fork/exec/spawn/subprocess/os.system);
* **no network**: the audit hook refuses socket creation, and `ctypes` / `_ctypes` imports are
  refused so the hook cannot be bypassed through raw calls;
* a **wall-clock timeout**, after which the process group is killed.

This is process-level isolation, sufficient for small RL reward programs on a machine you control.
It is not a container: for untrusted code at scale, run the workers in containers or VMs as well.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxLimits", "SandboxResult", "run_python", "run_many"]

_BOOT = r'''
import sys, os
_ROOT = os.path.realpath(os.getcwd())
_BLOCK = ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "subprocess.Popen", "os.system",
          "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg", "pty.spawn",
          "ctypes.dlopen", "ctypes.dlsym", "sys.addaudithook", "os.chdir")
def _hook(event, args):
    if event in _BLOCK or event.startswith(("socket.", "ctypes.")):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args and str(args[0]).split(".")[0] in ("ctypes", "_ctypes"):
        raise PermissionError("sandbox: ctypes is not allowed")
    if event == "open" and len(args) > 1 and args[1] is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        mode = args[1] if isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writing = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writing:
            path = os.path.realpath(os.fsdecode(args[0]))
            if not (path == _ROOT or path.startswith(_ROOT + os.sep)):
                raise PermissionError(f"sandbox: writing {path} is not allowed")
sys.addaudithook(_hook)
del _hook
sys.argv = ["main.py"]
with open("main.py") as _f:
    _code = compile(_f.read(), "main.py", "exec")
del _f
exec(_code, {"__name__": "__main__"})
'''


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 5.0  # killed after this much elapsed time
    cpu_seconds: int = 2  # RLIMIT_CPU
    memory_mb: int = 512  # RLIMIT_AS (address space)
    output_bytes: int = 65536  # RLIMIT_FSIZE: stdout, stderr and any file written
    max_read_bytes: int = 65536  # how much of stdout/stderr is returned


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited with status 0 in time
    returncode: int | None  # None when killed on the wall-clock timeout
    stdout: str
    stderr: str
    timed_out: bool
    output_capped: bool  # stdout/stderr hit the size limit (the process was stopped)


def _limits(lim: SandboxLimits):
    def apply() -> None:
        mem = lim.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_seconds, lim.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim.output_bytes, lim.output_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_python(code: str, stdin: str = "", limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `code` as a Python program under the sandbox (module docstring); never raises on bad code."""
    with tempfile.TemporaryDirectory(prefix="rlx-sandbox-") as tmp:
        d = Path(tmp)
        (d / "main.py").write_text(code)
        (d / "boot.py").write_text(_BOOT)
        out, err = open(d / "stdout", "wb"), open(d / "stderr", "wb")
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "boot.py"], cwd=tmp, stdin=subprocess.PIPE,
                                    stdout=out, stderr=err, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                                    preexec_fn=_limits(limits), start_new_session=True)
        finally:
            out.close(), err.close()
        timed_out = False
        try:
            proc.communicate(stdin.encode(), timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        except BrokenPipeError:  # the program exited without reading its input
            proc.wait()
        stdout = (d / "stdout").read_bytes()[: limits.max_read_bytes].decode("utf-8", "replace")
        stderr = (d / "stderr").read_bytes()[: limits.max_read_bytes].decode("utf-8", "replace")
        capped = proc.returncode == -signal.SIGXFSZ or max((d / "stdout").stat().st_size,
                                                           (d / "stderr").stat().st_size) >= limits.output_bytes
        code_ = None if timed_out else proc.returncode
        return SandboxResult(code_ == 0 and not capped, code_, stdout, stderr, timed_out, capped)


def run_many(programs: list[tuple[str, str]], limits: SandboxLimits = SandboxLimits(), workers: int = 1
             ) -> list[SandboxResult]:
    """`run_python` over (code, stdin) pairs, `workers` at a time (each run is its own process, so
    threads are enough to keep that many sandboxes busy); results in input order."""
    if workers <= 1:
        return [run_python(c, s, limits) for c, s in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda cs: run_python(cs[0], cs[1], limits), programs))

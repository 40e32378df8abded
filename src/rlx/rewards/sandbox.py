"""Run model-generated Python in a separate, limited process (the only place rlx executes such code).

    res = run_python("print(sum(range(10)))", limits=SandboxLimits(wall_seconds=2))
    res.ok, res.stdout        # True, "45\\n"

Each call gets:

* a **separate process** (`python -I -S`: no user site, no site-packages, environment emptied), in a
  new session so the whole process group is killed on timeout;
* a **fresh temporary directory** as its working directory (inside a parent only rlx can change, so the
  program cannot remove or replace it), deleted afterwards; files may be
  created, written, renamed or removed only inside it (an audit hook refuses `open` for writing,
  `os.open` with write flags, and remove / rename / link / chmod / mkdir events elsewhere); stdout and
  stderr go to files the parent holds open outside it;
* **an unprivileged user** (one of the 64 reserved uids/gids 65470-65533, one per program running at the
  same time on the machine, so each has its own process count; no new privileges) when rlx runs as root,
  so the process limits hold and the trainer's files and environment are out of reach; what that uid left
  in /tmp, /var/tmp and /dev/shm is removed after the run. The program needs only the standard library, so where
  rlx's own Python lives under a private home (e.g. /root/.pyenv) it runs on a Python that user can run
  (`RLX_SANDBOX_PYTHON`, else /usr/bin/python3, /usr/local/bin/python3, `python3` on PATH). As root with
  no such Python, `run_python` refuses (`SandboxUnavailable`) rather than run the program as root;
* **resource limits** (setrlimit): CPU seconds, address space, file size (which also caps stdout and
  stderr, written to files in the directory), no new processes (RLIMIT_NPROC 0 plus the audit hook
  refusing fork/exec/spawn/subprocess/os.system);
* **no network**: a network namespace of its own (no interfaces up) wherever `unshare` can make one
  (root, or unprivileged user namespaces); in any case the audit hook refuses socket creation, and
  `ctypes`, `gc`, `_posixsubprocess` imports (under any name), tracing (`sys.settrace` / `setprofile`),
  `setrlimit` and replacing a function's code are refused so the hook is hard to bypass or loosen;
* a **wall-clock timeout**, after which the process group is killed.

The audit hook is a second layer, not the boundary: Python code can reach its state, so what holds
against a determined program is the OS layer (the unprivileged user with no new processes, the limits,
the network namespace). Not covered (it would take a mount namespace or a container): the program can
read world-readable files, e.g. a dataset's test cases (keep hidden tests out of world-readable files),
and fill /dev/shm or /tmp while it runs (removed after the run). This is process-level isolation,
sufficient for small RL reward programs on a machine you control. It is not a container: for untrusted
code at scale, run the workers in containers or VMs as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxLimits", "SandboxResult", "SandboxUnavailable", "run_python", "run_many"]

_BOOT = r'''
def _install():
    import os, sys
    root = os.path.realpath(os.getcwd())
    block = frozenset(("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "subprocess.Popen",
                       "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.kill",
                       "os.killpg", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "sys.addaudithook", "os.chdir",
                       "os.chroot", "resource.setrlimit", "resource.prlimit", "sys.settrace", "sys.setprofile"))
    # a module that could undo the hook (find it, raw calls, fork without an audit event): refused
    no_import = frozenset(("ctypes", "_ctypes", "gc", "_posixsubprocess", "_xxsubinterpreters", "_testcapi"))
    code_attrs = frozenset(("__code__", "__defaults__", "__kwdefaults__"))
    # path arguments of events that create, change or remove files: all must lie inside the sandbox
    import types
    paths = types.MappingProxyType({
        "os.remove": 1, "os.rename": 2, "os.rmdir": 1, "os.mkdir": 1, "os.symlink": 2, "os.link": 2, "os.chmod": 1,
        "os.chown": 1, "os.truncate": 1, "os.utime": 1, "os.chflags": 1, "shutil.rmtree": 1, "shutil.move": 2,
        "shutil.copyfile": 2})  # read-only: a traceback can show the hook's locals
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    # the hook's own references: the program can rebind os.path.realpath or shadow builtins in __main__
    realpath, fsdecode, sep, PathLike = os.path.realpath, os.fsdecode, os.sep, os.PathLike
    import builtins as b
    isinstance, str, any, all, len, PermissionError = b.isinstance, b.str, b.any, b.all, b.len, b.PermissionError

    def inside(p):
        if isinstance(p, int):  # a file descriptor: only ones this process opened (and the hook checked)
            return True
        path = realpath(fsdecode(p))
        return path == root or path.startswith(root + sep)

    def hook(event, args):
        if event in block or event.startswith(("socket.", "ctypes.")):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "object.__setattr__" and len(args) > 1 and args[1] in code_attrs:
            raise PermissionError(f"sandbox: setting {args[1]} is not allowed")
        if event == "import" and args:
            parts = str(args[0]).split(".")
            if no_import.intersection(parts) or any(p.startswith("_test") for p in parts):
                raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open" and args and isinstance(args[0], (str, bytes, PathLike)):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""  # os.open reports None
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if (any(c in mode for c in "wax+") or flags & write_flags) and not inside(args[0]):
                raise PermissionError(f"sandbox: writing {fsdecode(args[0])} is not allowed")
        n = paths.get(event)
        if n and not all(inside(a) for a in args[:n] if isinstance(a, (str, bytes, PathLike, int))):
            raise PermissionError(f"sandbox: {event} outside the sandbox is not allowed")

    sys.addaudithook(hook)  # the only reference to the hook and its state is the interpreter's


_install()
del _install
import sys
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
    output_bytes: int = 65536  # at most this much stdout, stderr or any one file (RLIMIT_FSIZE one byte more)
    max_read_bytes: int = 65536  # how much of stdout/stderr is returned


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited with status 0 in time
    returncode: int | None  # None when killed on the wall-clock timeout
    stdout: str
    stderr: str
    timed_out: bool
    output_capped: bool  # stdout/stderr hit the size limit (the process was stopped)


_NOBODY = 65534  # run as this uid/gid when rlx itself runs as root (containers): root ignores RLIMIT_NPROC,
# can read the trainer's /proc/<pid>/environ and could raise its own hard limits
# RLIMIT_NPROC counts every process of a uid, so programs running at the same time (reward_workers, parallel
# seeds) each need a uid of their own or the second one's exec fails: 65534 (nobody) and the reserved ids below it
# (not 65534 itself: other software runs as nobody, and the leftovers of a program's uid are removed)
_UIDS = tuple(range(_NOBODY - 1, _NOBODY - 65, -1))


_UID_WAIT_SECONDS = 120.0  # all 64 ids busy this long: something holds them; fail instead of hanging the run


def _lock_dir() -> Path:
    """The directory of the uid locks: root's own (0700), so no other user can take (and hold) a lock."""
    d = Path(tempfile.gettempdir()) / f"rlx-sandbox-locks-{os.geteuid()}"
    try:
        d.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(d)
    except OSError as e:
        raise SandboxUnavailable(f"sandbox: cannot use the lock directory {d}: {e}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise SandboxUnavailable(f"sandbox: {d} must be a directory of uid {os.geteuid()} with mode 0700 (another "
                                 "user made it?); remove it and run again")
    return d


@contextlib.contextmanager
def _unprivileged_uid():
    """A uid from _UIDS that no other program of any rlx process on this machine holds (a lock file each)."""
    d, deadline = _lock_dir(), time.monotonic() + _UID_WAIT_SECONDS
    while True:
        for uid in _UIDS:
            fd = os.open(d / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield uid
            finally:
                os.close(fd)  # releases the lock
            return
        if time.monotonic() > deadline:
            raise SandboxUnavailable(f"sandbox: all {len(_UIDS)} program uids stayed busy for {_UID_WAIT_SECONDS:.0f} s "
                                     f"(locks in {d})")
        time.sleep(0.01)


class SandboxUnavailable(RuntimeError):
    """No safe way to run a program here (as root, with no Python the unprivileged user can run)."""


def _nobody_can_run(python: str) -> bool:
    """True when uid 65534 can reach and run `python` and its standard library (not when it lives under a
    private home such as /root/.pyenv)."""
    def reachable(path: str, need: int) -> bool:
        p = Path(os.path.realpath(path))
        dirs_ok = all(os.stat(d).st_mode & 0o001 for d in [*reversed(p.parents)])
        return dirs_ok and os.stat(p).st_mode & need == need
    try:
        if not reachable(python, 0o005):
            return False
        out = subprocess.run([python, "-I", "-S", "-c", "import os, sys; print(os.path.dirname(os.__file__)); "
                              "print(sys.version_info >= (3, 8))"], capture_output=True, text=True, timeout=10)
        stdlib, new_enough = out.stdout.split()
        return out.returncode == 0 and new_enough == "True" and reachable(stdlib, 0o005)
    except (OSError, ValueError, subprocess.SubprocessError):
        return False


@functools.cache
def _interpreter() -> tuple[str, bool]:
    """(the Python that runs programs, whether to switch to uid 65534): rlx's own Python unless rlx runs as
    root and that user cannot run it; then the first of RLX_SANDBOX_PYTHON, /usr/bin/python3,
    /usr/local/bin/python3, python3 on PATH that it can run (programs use only the standard library)."""
    if os.geteuid() != 0:
        return sys.executable, False
    env = os.environ.get("RLX_SANDBOX_PYTHON")
    for python in ([env] if env else []) + [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3",
                                            shutil.which("python3") or ""]:
        if python and _nobody_can_run(python):
            return python, True
    raise SandboxUnavailable(
        f"sandbox: rlx runs as root and uid {_NOBODY} can run no Python ({sys.executable} lies under a private "
        "directory); set RLX_SANDBOX_PYTHON to a world-readable python3 (>= 3.8), or run rlx as a normal user")


@functools.cache
def _unshare_net() -> list[str]:
    """The command prefix that gives the program a network namespace of its own ([] where none can be made)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    cmd = [unshare, "--net"] if os.geteuid() == 0 else [unshare, "--user", "--net"]
    try:
        ok = subprocess.run([*cmd, "--", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return cmd if ok else []


@functools.cache
def _prctl():
    """libc's prctl, loaded in the parent (nothing is imported in the forked child, where other threads'
    locks may be held); None where there is none."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _limits(lim: SandboxLimits, uid: int | None, unshare: bool):
    prctl = _prctl()

    def apply() -> None:
        if prctl is not None:
            prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no exec in the program's tree gains privileges
        if uid is not None:
            os.setgroups([])
            if not unshare:  # else `unshare` switches user after it made the namespace (that needs root)
                os.setgid(uid)
                os.setuid(uid)
        mem = lim.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_seconds, lim.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim.output_bytes + 1, lim.output_bytes + 1))
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_python(code: str, stdin: str = "", limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `code` as a Python program under the sandbox (module docstring); never raises on bad code
    (`SandboxUnavailable` when the machine offers no safe way to run any program)."""
    python, drop_root = _interpreter()
    with _unprivileged_uid() if drop_root else contextlib.nullcontext() as uid:
        return _run(code, stdin, limits, python, uid)


def _run(code: str, stdin: str, limits: SandboxLimits, python: str, uid: int | None) -> SandboxResult:
    net = _unshare_net()
    switch = ["--setgid", str(uid), "--setuid", str(uid)] if uid is not None and net else []
    # the program's directory `work` sits in a parent only rlx can change: the program can fill, chmod or
    # empty `work` but not remove or replace it (a replaced directory made run_python raise)
    parent = Path(tempfile.mkdtemp(prefix="rlx-sandbox-"))
    try:
        os.chmod(parent, 0o711)
        tmp = parent / "work"
        tmp.mkdir(mode=0o700)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            return _launch(code, stdin, limits, python, uid, net, switch, tmp, out, err)
    finally:
        _remove(parent)
        if uid is not None:
            _remove_leftovers(uid)


def _remove(path: Path) -> None:
    """Remove a program's directory whatever it holds (5000 nested directories overflow rmtree's recursion)."""
    try:
        shutil.rmtree(path)
    except (OSError, RecursionError):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True)


_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")  # writable by every uid: what a program leaves there is removed


def _remove_leftovers(uid: int) -> None:
    """Files and directories the program's uid (used by no one else) left in the shared temp directories:
    they would fill memory (/dev/shm is RAM) and pass data to later programs."""
    for shared in _SHARED_TMP:
        try:
            entries = list(os.scandir(shared))
        except OSError:
            continue
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_uid == uid:
                    _remove(Path(e.path)) if e.is_dir(follow_symlinks=False) else os.unlink(e.path)
            except OSError:
                pass


def _launch(code: str, stdin: str, limits: SandboxLimits, python: str, uid: int | None, net: list[str],
            switch: list[str], tmp: Path, out, err) -> SandboxResult:
    # stdout/stderr: files the parent holds open outside the sandbox directory, so the program can
    # neither swap them for a FIFO, a symlink or /dev/zero nor make the parent read without bound
    (tmp / "main.py").write_text(code)
    (tmp / "boot.py").write_text(_BOOT)
    if uid is not None:
        os.chown(tmp, uid, uid)
    argv = [*net, *switch, *(["--"] if net else []), python, "-I", "-S", "boot.py"]
    proc = subprocess.Popen(argv, cwd=tmp, stdin=subprocess.PIPE,
                            stdout=out, stderr=err, env={"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0"},
                            preexec_fn=_limits(limits, uid, bool(net)), start_new_session=True)
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
    try:  # stray descendants (a double fork) die with the session's process group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    stdout, stderr = (_head(f, limits.max_read_bytes) for f in (out, err))
    capped = proc.returncode == -signal.SIGXFSZ or max(os.fstat(f.fileno()).st_size
                                                       for f in (out, err)) > limits.output_bytes
    code_ = None if timed_out else proc.returncode
    return SandboxResult(code_ == 0 and not capped, code_, stdout, stderr, timed_out, capped)


def _head(f, n: int) -> str:
    f.seek(0)
    return f.read(n).decode("utf-8", "replace")


def run_many(programs: list[tuple[str, str]], limits: SandboxLimits = SandboxLimits(), workers: int = 1
             ) -> list[SandboxResult]:
    """`run_python` over (code, stdin) pairs, `workers` at a time (each run is its own process, so
    threads are enough to keep that many sandboxes busy); results in input order."""
    if workers <= 1:
        return [run_python(c, s, limits) for c, s in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda cs: run_python(cs[0], cs[1], limits), programs))

"""The code sandbox: what runs, what is refused, what is stopped; execution rewards."""

import os
from pathlib import Path

import pytest

from rlx.rewards.code import fenced_code, execution_reward
from rlx.rewards.sandbox import SandboxLimits, run_many, run_python

FAST = SandboxLimits(wall_seconds=3, cpu_seconds=1, memory_mb=256, output_bytes=4096)


def test_plain_program_with_stdin():
    r = run_python("import sys; print(sys.stdin.read().upper())", "abc", FAST)
    assert r.ok and r.returncode == 0 and r.stdout == "ABC\n" and not r.timed_out


def test_errors_are_results_not_exceptions():
    r = run_python("1/0", limits=FAST)
    assert not r.ok and r.returncode == 1 and "ZeroDivisionError" in r.stderr
    r = run_python("def f(:", limits=FAST)
    assert not r.ok and "SyntaxError" in r.stderr


@pytest.mark.parametrize("code, message", [
    ("import socket; socket.socket()", "socket"),
    ("import subprocess; subprocess.run(['true'])", "_posixsubprocess"),  # refused at import (forks unaudited)
    ("import gc", "gc"),
    ("import sys; sys.settrace(lambda *a: None)", "sys.settrace"),
    ("import resource; resource.setrlimit(resource.RLIMIT_CPU, (100, 100))", "resource.setrlimit"),
    ("import os; os.system('true')", "os.system"),
    ("import os; os.fork()", "os.fork"),
    ("import ctypes", "ctypes"),
])
def test_network_processes_and_escape_hatches_are_refused(code, message):
    r = run_python(code, limits=FAST)
    assert not r.ok and "PermissionError: sandbox" in r.stderr and message in r.stderr


def test_files_only_inside_the_temporary_directory(tmp_path):
    outside = tmp_path / "escape.txt"
    r = run_python(f"open({str(outside)!r}, 'w').write('x')", limits=FAST)
    assert not r.ok and not outside.exists()
    r = run_python("import os; open('a.txt', 'w').write('hi'); print(open('a.txt').read(), os.getcwd())", limits=FAST)
    assert r.ok and r.stdout.startswith("hi ")
    workdir = Path(r.stdout.split()[1])
    assert workdir.parent.name.startswith("rlx-sandbox-") and not workdir.parent.exists()  # deleted afterwards


@pytest.mark.parametrize("code", [
    "import os; os.close(os.open({out!r}, os.O_WRONLY | os.O_CREAT))",  # os.open audits mode None
    "import __main__; __main__._ROOT = ''; open({out!r}, 'w')",  # the hook's state is not a global
    "import os; os.remove({victim!r})",
    "import os; os.rename({victim!r}, 'mine')",
    "import os; os.symlink({victim!r}, {out!r})",
])
def test_escapes_found_in_review_are_refused(tmp_path, code):
    """Writes, removals, renames and links outside the sandbox directory (session 9 review)."""
    out, victim = tmp_path / "escape.txt", tmp_path / "victim.txt"
    victim.write_text("keep me")
    r = run_python(code.format(out=str(out), victim=str(victim)), limits=FAST)
    assert not r.ok and "PermissionError: sandbox" in r.stderr
    assert not out.exists() and victim.read_text() == "keep me"


def test_the_program_cannot_swap_the_output_files():
    """stdout/stderr are files the parent holds outside the sandbox: replacing names there changes nothing
    (a FIFO named stdout hung the trainer; a symlink to /dev/zero could exhaust its memory)."""
    r = run_python("import os; print('hello', flush=True); os.mkfifo('stdout'); open('stderr', 'w').write('junk')",
                   limits=FAST)
    assert r.ok and r.stdout == "hello\n" and r.stderr == ""


def test_limits_stop_runaway_programs():
    assert run_python("import time; time.sleep(30)", limits=FAST).timed_out
    cpu = run_python("while True: pass", limits=FAST)
    assert not cpu.ok and (cpu.timed_out or cpu.returncode != 0)
    mem = run_python("x = bytearray(1024 ** 3)", limits=FAST)
    assert not mem.ok and "MemoryError" in mem.stderr
    spam = run_python("while True: print('x' * 1000)", limits=FAST)
    assert not spam.ok and spam.output_capped and len(spam.stdout) <= FAST.max_read_bytes


def test_environment_is_empty_and_site_packages_hidden():
    r = run_python("import os; print(sorted(os.environ))", limits=FAST)
    assert r.ok and "HOME" not in r.stdout
    assert not run_python("import numpy", limits=FAST).ok
    assert os.environ.get("PATH")  # the parent is untouched


def test_run_many_keeps_order_and_test_case_rewards():
    res = run_many([(f"print({i})", "") for i in range(6)], FAST, workers=3)
    assert [r.stdout.strip() for r in res] == [str(i) for i in range(6)]
    prog = "print(int(input()) * 2)"
    assert execution_reward(prog, [("3", "6"), ("5", "10")], FAST) == 1.0
    assert execution_reward(prog, [("3", "6"), ("5", "11"), ("x", "0")], FAST, workers=2) == pytest.approx(1 / 3)
    assert execution_reward("while True: pass", [("", "")], FAST) == 0.0
    with pytest.raises(ValueError):
        execution_reward(prog, [])


def test_fenced_code():
    assert fenced_code("text\n```python\nprint(1)\n```\nmore ```py\nprint(2)\n```") == "print(2)\n"
    assert fenced_code("print(3)") == "print(3)"


# -- session 11 review: the audit hook is bypassable; the OS layer holds ---------------------------------

DROPS_ROOT = os.geteuid() == 0  # as root the program runs as uid 65534 (or run_python refuses)

SPAWN = """
import glob, importlib.util, os, sys
so = [f for d in sys.path for f in glob.glob(os.path.join(d, "_posixsubprocess*.so"))]
if so:  # an extension module: load it under another name
    spec = importlib.util.spec_from_file_location("x._posixsubprocess", so[0])
    ps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ps)
else:  # compiled into the interpreter
    import _imp, importlib.machinery
    ps = _imp.create_builtin(importlib.machinery.ModuleSpec("_posixsubprocess", None))
r, w = os.pipe()
pid = ps.fork_exec([b"/bin/true"], (b"/bin/true",), True, (), None, None, -1, -1, -1, -1, -1, -1, r, w,
                   True, True, -1, None, None, None, -1, None, False)
print("spawned", pid)
"""


def test_no_new_process_even_through_an_unaudited_fork():
    """`_posixsubprocess.fork_exec` forks without an audit event. Loaded as `x._posixsubprocess` it used to
    pass the import check (its first part only) and started a shell that outlived the timeout. Now the
    renamed import is refused, and a built-in one cannot fork: no new processes for the program's uid."""
    r = run_python(SPAWN, limits=FAST)
    assert not r.ok and "spawned" not in r.stdout
    assert "PermissionError: sandbox: importing x._posixsubprocess" in r.stderr or "BlockingIOError" in r.stderr \
        or "Resource temporarily unavailable" in r.stderr, r.stderr[-300:]


def test_programs_at_the_same_time_each_run():
    """RLIMIT_NPROC 0 counts all processes of a uid: two programs as the same uid made the second exec fail
    (empty output, reward 0). Each program running at the same time gets its own uid."""
    res = run_many([("import time; time.sleep(0.3); print(7)", "")] * 6, FAST, workers=6)
    assert [r.stdout for r in res] == ["7\n"] * 6 and all(r.ok for r in res)


def test_the_program_runs_unprivileged_with_no_new_processes_and_no_network():
    from rlx.rewards.sandbox import _unshare_net

    r = run_python("import os; print(os.getuid()); print([l.split(':')[0].strip() for l in "
                   "open('/proc/self/net/dev').read().splitlines()[2:]])", limits=FAST)
    assert r.ok
    uid, nets = r.stdout.splitlines()
    if DROPS_ROOT:
        assert 65534 - 65 < int(uid) < 65534
    if _unshare_net():  # a network namespace of its own: only the loopback interface (and it is down)
        assert nets == "['lo']"


def test_the_hooks_state_cannot_be_switched_off_from_a_traceback(tmp_path):
    """A PermissionError's traceback shows the hook's frame: its table of checked events used to be a dict the
    program could clear, and `inside.__code__` could be replaced. Both are refused now; and where the program
    runs unprivileged, even a rewired check (a closure cell) cannot reach files the trainer's user owns."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    grab = ("import os\ntry:\n    os.remove({v!r})\nexcept PermissionError as e:\n    tb = e.__traceback__\n"
            "    while tb.tb_next: tb = tb.tb_next\n    loc = tb.tb_frame.f_locals\n").format(v=str(victim))
    r = run_python(grab + "    loc['paths'].clear()\n", limits=FAST)
    assert not r.ok and "mappingproxy" in r.stderr
    r = run_python(grab + "    loc['inside'].__code__ = (lambda p: True).__code__\n", limits=FAST)
    assert not r.ok and "PermissionError: sandbox: setting __code__" in r.stderr
    r = run_python(grab + "    loc['inside'].__closure__[0].cell_contents = '/'\nos.remove({v!r})\n".format(v=str(victim)),
                   limits=FAST)
    if DROPS_ROOT:
        assert not r.ok and victim.read_text() == "keep me"


def test_dir_fd_writes_outside_are_stopped_by_the_os_layer(tmp_path):
    """`open`'s audit event carries no dir_fd, so the hook resolves the name inside the sandbox; as uid 65534
    the write into the trainer's directory fails all the same."""
    code = ("import os\nfd = os.open({d!r}, os.O_RDONLY)\nw = os.open('escaped.txt', os.O_WRONLY | os.O_CREAT, "
            "0o644, dir_fd=fd)\nos.write(w, b'x')\n").format(d=str(tmp_path))
    r = run_python(code, limits=FAST)
    if DROPS_ROOT:
        assert not r.ok and not (tmp_path / "escaped.txt").exists()


def test_output_of_exactly_the_cap_is_not_capped():
    r = run_python(f"import sys; sys.stdout.write('x' * {FAST.output_bytes})", limits=FAST)
    assert r.ok and not r.output_capped and len(r.stdout) == FAST.output_bytes
    r = run_python(f"import sys; sys.stdout.write('x' * {FAST.output_bytes + 1})", limits=FAST)
    assert not r.ok and r.output_capped


def test_the_uid_locks_live_where_no_other_user_can_hold_them(tmp_path, monkeypatch):
    """The locks were world-openable files in /tmp: any user could take all 64 and hang every reward call.
    Now a 0700 directory of the running user; one made by someone else (or loosened) is refused."""
    import tempfile

    from rlx.rewards import sandbox

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    d = sandbox._lock_dir()
    assert d.parent == tmp_path and (d.stat().st_mode & 0o777) == 0o700
    d.chmod(0o777)
    with pytest.raises(sandbox.SandboxUnavailable, match="mode 0700"):
        sandbox._lock_dir()


def test_second_review_a_program_cannot_break_run_python_or_leave_files_behind():
    """Session 11's second review: emptying and replacing the program's directory made run_python raise (a
    bad completion killed the run); 5000 nested directories overflowed rmtree; files in /dev/shm (RAM)
    survived the call and passed data to later programs; rebinding os.path.realpath switched the hook's
    path check off; setuid binaries could gain privileges (NoNewPrivs 0)."""
    replace = ("import os\nroot = os.getcwd()\nfor f in os.listdir('.'):\n    os.remove(f)\n"
               "try:\n    os.rmdir(root)\nexcept OSError as e:\n    print('kept', e.errno)\n")
    r = run_python(replace, limits=FAST)
    assert r.returncode is not None and ("kept" in r.stdout or not DROPS_ROOT)
    deep = ("import os\nfd = os.open('.', os.O_RDONLY)\nfor _ in range(3000):\n    os.mkdir('a', dir_fd=fd)\n"
            "    fd = os.open('a', os.O_RDONLY, dir_fd=fd)\n")
    assert run_python(deep, limits=SandboxLimits(wall_seconds=10, cpu_seconds=5)).returncode is not None
    name = f"rlx-test-leftover-{os.getpid()}"
    leave = (f"import os\nfor d in ('/dev/shm', '/tmp'):\n    fd = os.open(d, os.O_RDONLY)\n"
             f"    os.close(os.open({name!r}, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))\n")
    run_python(leave, limits=FAST)
    if DROPS_ROOT:
        assert not os.path.exists(f"/dev/shm/{name}") and not os.path.exists(f"/tmp/{name}")
    planted = f"/tmp/{name}-planted"
    r = run_python(f"import os\nos.path.realpath = lambda p, *a, **k: os.getcwd()\nopen({planted!r}, 'w')", limits=FAST)
    assert not r.ok and "PermissionError: sandbox: writing" in r.stderr and not os.path.exists(planted)
    r = run_python("print([l for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0].split()[1])",
                   limits=FAST)
    assert r.ok and r.stdout.strip() == "1"

"""Run untrusted Python (model-written code) with limits: :func:`run_code` gives a
:class:`SandboxResult`. See docs/sandbox.md for what it contains and what it cannot.

The code runs in a fresh interpreter (``python -I -S``: the standard library only, no
environment) in a new session, started by ``sandbox_launch.py``, which enters network, mount
and PID namespaces where the OS allows, makes the file system read-only but for a fresh work
directory, sets CPU, memory, process, file and output limits, and drops root to a throwaway uid.
This is not a VM or a container: the code shares the kernel with the host.
"""

from __future__ import annotations

import json
import math
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("ok", "error", "timeout", "cpu_limit", "memory", "file_limit", "output_limit",
            "killed", "sandbox_error")
_LAUNCHER = Path(__file__).with_name("sandbox_launch.py")
_CHUNK = 65536


@dataclass
class SandboxResult:
    """How a run ended: ``status`` (one of :data:`STATUSES`), the exit code (negative: killed by
    that signal), the output (each stream cut at the cap), wall time, the limits and isolation
    in force."""

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    wall_s: float
    limits: dict[str, float | int | None] = field(default_factory=dict)
    isolation: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def summary(self) -> str:
        """One line for people (and for a model's tool answer)."""
        what = {
            "ok": "ran ok", "error": f"exited with code {self.exit_code}",
            "timeout": f"stopped at the wall-clock limit ({self.limits.get('timeout_s')} s)",
            "cpu_limit": f"stopped at the CPU-time limit ({self.limits.get('cpu_s')} s)",
            "memory": f"ran out of memory (limit {self.limits.get('memory_mb')} MB)",
            "file_limit": f"wrote a file over the limit ({self.limits.get('file_mb')} MB)",
            "output_limit": "stopped: its output passed the limit "
                            f"({self.limits.get('max_output_bytes')} bytes)",
            "killed": f"was killed by signal {-(self.exit_code or 0)}",
            "sandbox_error": "could not be started by the sandbox",
        }[self.status]
        tail = _last_line(self.stderr) if self.status in ("error", "sandbox_error") else ""
        return f"{self.status}: the code {what} after {self.wall_s:.2f} s" + \
            (f" ({tail})" if tail else "")


def run_code(code: str, *, timeout_s: float = 10, cpu_s: int | None = None,
             memory_mb: int = 512, max_output_bytes: int = 64_000, max_procs: int = 32,
             file_mb: int = 16, max_files: int = 64, namespaces: bool = True) -> SandboxResult:
    """Run ``code`` (Python source) in the sandbox and wait for it, at most ``timeout_s``.

    ``cpu_s`` (default: ``timeout_s`` rounded up) is CPU time, ``memory_mb`` the address
    space, ``max_procs`` the processes and threads, ``file_mb`` the largest file it may write,
    ``max_files`` its open files; stdout and stderr are each capped at ``max_output_bytes``.
    ``namespaces=False`` uses none (the fallback where the OS allows none; tests use it).
    """
    cpu = max(1, math.ceil(timeout_s if cpu_s is None else cpu_s))
    limits = {"timeout_s": timeout_s, "cpu_s": cpu, "memory_mb": memory_mb,
              "max_procs": max_procs, "file_mb": file_mb, "max_files": max_files,
              "max_output_bytes": max_output_bytes}
    workdir = tempfile.mkdtemp(prefix="rlcore-sandbox-", dir=_work_root())
    try:
        uid = _throwaway_uid(workdir)
        (Path(workdir) / "main.py").write_text(code, encoding="utf-8", errors="replace")
        info_r, info_w = os.pipe()
        config = {
            "info_fd": info_w, "workdir": workdir, "script": "main.py", "uid": uid,
            "python": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
            "prefix": sys.base_prefix, "outer_uid": os.getuid(), "outer_gid": os.getgid(),
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                    "HOME": workdir, "TMPDIR": workdir},
            "cpu_s": cpu, "memory_mb": memory_mb, "file_mb": file_mb,
            "max_files": max_files, "namespaces": namespaces,
            "nproc": max_procs + (0 if uid else _user_tasks()),
        }
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(_LAUNCHER), json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(info_w,), start_new_session=True, env={}, cwd=workdir)
        except OSError as err:  # the machine is out of processes or memory: not the code's fault
            os.close(info_r)
            return SandboxResult("sandbox_error", None, "", f"rlcore sandbox: could not start "
                                 f"the code: {err}", 0.0, limits, {})
        finally:
            os.close(info_w)
        status, out, err, info = _watch(proc, info_r, start + timeout_s, max_output_bytes)
        wall = time.monotonic() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    exit_code = -info["signal"] if "signal" in info else info.get("exit_code", proc.returncode)
    if status:  # it was still running when the sandbox killed it
        exit_code = None
    stdout, stderr = (b.decode("utf-8", "replace") for b in (out, err))
    return SandboxResult(status or _status(exit_code, stderr), exit_code, stdout, stderr,
                         wall, limits, info.get("isolation", {}))


def _watch(proc: subprocess.Popen, info_r: int, deadline: float, cap: int
           ) -> tuple[str | None, bytes, bytes, dict]:
    """Read stdout, stderr and the launcher's info pipe together until all close or a limit
    is hit, then kill everything left; never holds more than ``cap`` bytes of a stream."""
    streams = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    info_buf, status = bytearray(), None
    sel = selectors.DefaultSelector()
    for fd in (*streams, info_r):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    try:
        while sel.get_map() and status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                status = "timeout"
            for key, _ in sel.select(min(max(left, 0), 0.5)):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fd)
                elif key.fd == info_r:
                    info_buf += chunk
                else:
                    buf = streams[key.fd]
                    if len(buf) + len(chunk) > cap:
                        status = "output_limit"
                    buf += chunk[: cap - len(buf)]
        if status is None:  # the pipes closed: give the code the rest of its time to exit
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                status = "timeout"
    finally:
        info = _info(info_buf)
        _kill(proc, info.get("init_pid"))
        sel.close()
        for fd in (*streams, info_r):
            os.close(fd)
    out, err = streams.values()
    return status, bytes(out), bytes(err), info


def _info(raw: bytes) -> dict:
    """The launcher's JSON lines, merged (a line cut short by a kill is skipped)."""
    info: dict = {}
    for line in bytes(raw).splitlines():
        try:
            info.update(json.loads(line))
        except ValueError:
            pass
    return info


def _kill(proc: subprocess.Popen, init_pid: int | None) -> None:
    """SIGKILL the PID namespace through its init (the launcher reaps it once the kernel has
    killed every process in it), then the whole process group; wait for the launcher."""
    if init_pid:
        _signal(os.kill, init_pid)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    _signal(os.killpg, proc.pid)
    proc.wait()


def _signal(kill, target: int) -> None:
    try:
        kill(target, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _status(exit_code: int | None, stderr: str) -> str:
    if exit_code == 0:
        return "ok"
    if exit_code == 125 and stderr.startswith("rlcore sandbox: could not start"):
        return "sandbox_error"
    if exit_code == -signal.SIGXCPU:
        return "cpu_limit"
    if exit_code == -signal.SIGXFSZ or "File too large" in _last_line(stderr):
        return "file_limit"
    if _last_line(stderr).startswith("MemoryError"):
        return "memory"
    return "killed" if exit_code is not None and exit_code < 0 else "error"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _work_root() -> str:
    """The temp dir, when a throwaway uid can pass through every directory down to it; else /tmp
    (a TMPDIR inside a private directory, such as nox's, would keep it from its work dir)."""
    base = os.path.realpath(tempfile.gettempdir())
    parts = base.strip("/").split("/")
    if os.geteuid() != 0 or all(os.stat("/" + "/".join(parts[:i + 1])).st_mode & 0o001
                                for i in range(len(parts))):
        return base
    return "/tmp"


def _throwaway_uid(workdir: str) -> int | None:
    """As root: a random unused-looking uid for this run (so RLIMIT_NPROC counts only its
    processes, and it owns nothing but ``workdir``); else None (the user's own uid)."""
    if os.geteuid() != 0:
        return None
    uid = random.randrange(1 << 20, 1 << 30)
    os.chown(workdir, uid, uid)
    return uid


def _user_tasks() -> int:
    """This user's processes and threads now: RLIMIT_NPROC counts them all, so a non-root
    sandbox's limit is that many plus ``max_procs``."""
    uid, n = os.getuid(), 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == uid:
                n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n

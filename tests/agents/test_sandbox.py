"""The sandbox against the attacks model-written code may make: each is contained with a clear
status, none hangs, and the test process is unaffected (docs/sandbox.md)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlcore.agents.sandbox import STATUSES, run_code
from rlcore.cli.app import app

HANG = 60  # seconds: a generous "did not hang" bound on a loaded machine


def run(code: str, **limits):
    start = time.monotonic()
    result = run_code(code, **{"timeout_s": 3, **limits})
    assert time.monotonic() - start < HANG
    assert result.status in STATUSES and result.summary.startswith(result.status + ":")
    return result


def leftovers(result) -> list[int]:
    """Processes still running as the run's throwaway uid (only when the sandbox dropped root)."""
    user = result.isolation.get("user", "")
    if "unchanged" in user or not user.startswith("uid "):
        return []
    uid = int(user.split()[1])
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _uid(p) == uid]


def _uid(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def test_ok_run_reports_output_limits_and_isolation():
    result = run("import sys; print('hello'); print('oops', file=sys.stderr)")
    assert (result.status, result.exit_code, result.stdout, result.stderr) == \
        ("ok", 0, "hello\n", "oops\n")
    assert result.ok and set(result.isolation) == {"network", "processes", "filesystem", "user"}
    assert result.limits["memory_mb"] == 512 and result.limits["cpu_s"] == 3


def test_errors_are_errors_with_the_last_line_in_the_summary():
    result = run("raise ValueError('bad input')")
    assert result.status == "error" and result.exit_code == 1
    assert "ValueError: bad input" in result.summary


def test_infinite_loop_is_stopped():
    result = run("while True: pass", timeout_s=2)
    assert result.status in ("timeout", "cpu_limit")


def test_sleeping_is_stopped_at_the_wall_clock():
    result = run("import time; time.sleep(100)", timeout_s=1)
    assert result.status == "timeout" and result.exit_code is None


def test_fork_bomb_is_contained():
    result = run("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
                 timeout_s=2, max_procs=16)
    assert result.status in ("timeout", "cpu_limit", "error")
    assert leftovers(result) == []
    assert run("print(1)").ok  # the machine still starts processes


def test_a_daemon_that_leaves_the_session_dies_with_the_run():
    result = run("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(100)\n"
                 "print('parent done')")
    assert result.status == "ok" and result.stdout == "parent done\n"
    if "PID namespace" in result.isolation["processes"]:
        assert leftovers(result) == []


def test_ten_gigabytes_are_refused():
    result = run("x = bytearray(10 * 2**30)", memory_mb=256)
    assert result.status == "memory" and "MemoryError" in result.stderr


def test_a_file_over_the_limit_is_refused():
    result = run("f = open('big', 'wb')\nwhile True: f.write(b'x' * 2**20)", file_mb=2)
    assert result.status == "file_limit"


def test_its_own_directory_is_writable_and_removed_afterwards():
    result = run("import os; open('out.txt', 'w').write('x'); print(os.getcwd())")
    assert result.ok and not Path(result.stdout.strip()).exists()


def test_writing_outside_its_directory():
    target = Path("/tmp") / f"rlcore-sandbox-escape-{uuid.uuid4().hex}"
    result = run(f"open({str(target)!r}, 'w').write('escaped')")
    try:
        if result.isolation["filesystem"].startswith("read-only"):
            assert result.status == "error" and "Read-only file system" in result.stderr
            assert not target.exists()
        else:  # documented: without a mount namespace it writes where its user may
            assert result.isolation["filesystem"].startswith("host")
    finally:
        target.unlink(missing_ok=True)


def test_no_network_in_a_namespace():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        result = run(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), "
                     "timeout=2)\nprint('connected')")
        if result.isolation["network"].startswith("namespace"):
            assert result.status == "error" and "connected" not in result.stdout
            with pytest.raises(TimeoutError):
                listener.accept()
        else:  # the OS allows no network namespace here, and the result says so
            assert result.isolation["network"] == "none"
    finally:
        listener.close()


def test_the_parents_environment_is_not_visible(monkeypatch):
    secret = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("RLCORE_TEST_SECRET", secret)
    result = run("import os\nprint(dict(os.environ))\nfor pid in os.listdir('/proc'):\n"
                 "    try: print(open(f'/proc/{pid}/environ').read())\n"
                 "    except OSError: pass")
    assert result.ok and "RLCORE_TEST_SECRET" not in result.stdout
    if "PID namespace" in result.isolation["processes"]:
        assert secret not in result.stdout


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_gigabytes_of_output_stop_at_the_cap(stream):
    result = run(f"import sys\nwhile True: sys.{stream}.write('x' * 10**6)",
                 max_output_bytes=100_000, timeout_s=20)
    assert result.status == "output_limit"
    assert len(getattr(result, stream)) == 100_000


def test_cli_runs_an_attack_file(tmp_path):
    runner = CliRunner()
    attack = tmp_path / "attack.py"
    attack.write_text("import time\nprint('started', flush=True)\ntime.sleep(100)\n")
    result = runner.invoke(app, ["sandbox", "run", str(attack), "--timeout", "1"])
    assert result.exit_code == 1, result.output
    assert "status: timeout" in result.output and "isolation: network:" in result.output
    assert "--- stdout ---\nstarted" in result.output
    ok = tmp_path / "ok.py"
    ok.write_text("print(6 * 7)\n")
    result = runner.invoke(app, ["sandbox", "run", str(ok), "--memory", "256"])
    assert result.exit_code == 0 and "status: ok" in result.output and "42" in result.output
    result = runner.invoke(app, ["sandbox", "run", str(tmp_path / "missing.py")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_without_namespaces_the_result_says_what_is_not_isolated():
    """The fallback where the OS allows no namespaces (forced here): limits still hold, and
    ``isolation`` says that the network and the file system are the host's."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), "
                     "timeout=2)\nprint('connected')", namespaces=False)
        assert result.isolation["network"] == "none" and result.stdout == "connected\n"
        assert result.isolation["filesystem"].startswith("host")
        assert result.isolation["processes"].startswith("process group only")
    finally:
        listener.close()
    assert run("x = bytearray(10 * 2**30)", namespaces=False).status == "memory"
    assert run("while True: pass", timeout_s=1, namespaces=False).status in ("timeout",
                                                                             "cpu_limit")


def test_a_tmpdir_in_a_private_directory_still_runs(tmp_path, monkeypatch):
    """As root the code runs as a throwaway uid, which could not reach a work dir under a
    private TMPDIR (nox's is inside the 0700 clone of CI): the work dir goes to /tmp then."""
    import tempfile

    private = tmp_path / "private"
    (private / "tmp").mkdir(parents=True)
    private.chmod(0o700)
    monkeypatch.setenv("TMPDIR", str(private / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    result = run_code("print(6 * 7)", timeout_s=10)
    assert result.status == "ok" and result.stdout == "42\n", result

"""Run the attacks of docs/sandbox.md against the sandbox and print them as a markdown table.

    python scripts/sandbox_attacks.py
"""

from __future__ import annotations

import os
import socket
import sys

from rlcore.agents.sandbox import run_code

SECRET = "s3cret-value-of-the-parent"


def attacks(port: int) -> list[tuple[str, str, dict]]:
    """(name, code, limits) of each attack."""
    return [
        ("fork bomb", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
         {"timeout_s": 2}),
        ("infinite loop", "while True: pass", {"timeout_s": 5, "cpu_s": 2}),
        ("sleep forever", "import time; time.sleep(10**6)", {"timeout_s": 2}),
        ("10 GB allocation", "x = bytearray(10 * 2**30)", {}),
        ("1 GB file", "f = open('big', 'wb')\nfor _ in range(1024): f.write(b'x' * 2**20)", {}),
        ("write to /tmp", "open('/tmp/rlcore-sandbox-escaped', 'w').write('x')", {}),
        ("write to its home", "import os; open(os.path.expanduser('~/x'), 'w').write('x'); "
         "print('wrote', os.path.expanduser('~/x'))", {}),
        ("connect to a local listener", f"import socket\nsocket.create_connection("
         f"('127.0.0.1', {port}), timeout=2)\nprint('connected')", {}),
        ("read the parent's environment",
         f"import os\nseen = str(dict(os.environ))\nfor p in os.listdir('/proc'):\n"
         f"    try: seen += open(f'/proc/{{p}}/environ').read()\n    except OSError: pass\n"
         f"print('secret seen' if {SECRET!r} in seen else 'secret not seen')", {}),
        ("daemon that leaves the session", "import os, time\nif os.fork() == 0:\n"
         "    os.setsid(); time.sleep(10**6)\nprint('parent exits')", {}),
        ("gigabytes of stdout", "import sys\nwhile True: sys.stdout.write('x' * 10**6)",
         {"timeout_s": 30}),
        ("read /root", "import os; print(os.listdir('/root'))", {}),
    ]


def outcome(result) -> str:
    """What happened, in a few words."""
    last = (result.stderr.strip().splitlines() or [""])[-1][:70]
    out = result.stdout.strip()[:40]
    if result.status == "output_limit":
        return f"{len(result.stdout):,} bytes kept"
    return (last or out or "-").replace("|", "/")


def left(result) -> int | str:
    """Processes still running as the run's throwaway uid ("?" when it kept the user's)."""
    user = result.isolation.get("user", "")
    if "unchanged" in user:
        return "?"
    uid, n = int(user.split()[1]), 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            n += os.stat(f"/proc/{pid}").st_uid == uid
        except OSError:
            pass
    return n


def main() -> int:
    os.environ["RLCORE_ATTACK_SECRET"] = SECRET
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    rows = ["| attack | status | exit code | wall (s) | what happened |", "|---|---|---|---|---|"]
    first = None
    for name, code, limits in attacks(listener.getsockname()[1]):
        result = run_code(code, **limits)
        first = first or result
        happened = outcome(result)
        if name in ("fork bomb", "daemon that leaves the session"):
            happened += f"; processes left afterwards: {left(result)}"
        rows.append(f"| {name} | `{result.status}` | {result.exit_code} | "
                    f"{result.wall_s:.2f} | {happened} |")
    listener.close()
    escaped = os.path.exists("/tmp/rlcore-sandbox-escaped")
    if escaped:
        os.unlink("/tmp/rlcore-sandbox-escaped")
    print("\n".join(rows))
    print(f"\n/tmp/rlcore-sandbox-escaped written: {'yes' if escaped else 'no'}. "
          f"Isolation in force (as {'root' if os.geteuid() == 0 else 'user ' + str(os.getuid())}"
          f", Linux {os.uname().release}):")
    for key, value in first.isolation.items():
        print(f"- {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

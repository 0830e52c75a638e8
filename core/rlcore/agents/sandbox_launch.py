"""The sandbox's launcher: ``python -I -S sandbox_launch.py CONFIG_JSON``, started by
:func:`rlcore.agents.sandbox.run_code` in a new session. Standard library only.

It enters new network, mount and PID namespaces where the OS allows (a user namespace too when
not root), makes the file system read-only but for the work directory, sets the resource
limits, drops to an unprivileged uid when root, and executes the untrusted code. What it put
in force goes back as JSON lines on the ``info`` file descriptor.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWUSER = 0x20000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
SYS_MOUNT_SETATTR, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 442, 0x8000, 1

libc = ctypes.CDLL(None, use_errno=True)
cfg = json.loads(sys.argv[1])
info_fd = cfg["info_fd"]


def report(**fields) -> None:
    os.write(info_fd, (json.dumps(fields) + "\n").encode())


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src, target, fstype, flags, data=None) -> None:
    src, target_b, fstype, data = (None if s is None else s.encode()
                                   for s in (src, target, fstype, data))
    check(libc.mount(src, target_b, fstype, flags, data), f"mount {target}")


def set_readonly(path: str, readonly: bool, recursive: bool) -> None:
    """mount_setattr(2): read-only on (or off) for the mount at ``path`` (and below it)."""
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY if readonly else 0,
                                 0 if readonly else MOUNT_ATTR_RDONLY, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    check(libc.syscall(SYS_MOUNT_SETATTR, -100, path.encode(), flags, attr, 32),
          f"mount_setattr {path}")


def unshare() -> set[str]:
    """Enter as many of the wanted namespaces as the OS allows; the names of those entered."""
    root = os.geteuid() == 0
    user = 0 if root else CLONE_NEWUSER
    for flags, names in ((CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, {"net", "mnt", "pid"}),
                         (CLONE_NEWNET, {"net"})):
        if libc.unshare(flags | user) == 0:
            if not root:  # be root inside the user namespace, mapped to ourselves outside
                uid, gid = cfg["outer_uid"], cfg["outer_gid"]
                for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                                   ("gid_map", f"0 {gid} 1")):
                    with open(f"/proc/self/{name}", "w") as f:
                        f.write(text)
            return names | ({"user"} if user else set())
    return set()


def filesystem(names: set[str]) -> str:
    """In a mount namespace: a fresh /proc, the interpreter reachable by the sandbox's uid, and
    every mount read-only but the work directory. Returns what is in force."""
    if "mnt" not in names:
        return "host (writable wherever the user may write)"
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if "pid" in names:
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass
    if cfg["uid"] is not None:
        reveal(cfg["prefix"])
    work = cfg["workdir"]
    mount(work, work, None, MS_BIND)
    try:
        set_readonly("/", True, recursive=True)
        set_readonly(work, False, recursive=False)
    except OSError as err:
        return f"host, not read-only ({err})"
    return "read-only except the work directory"


def reveal(prefix: str) -> None:
    """When a directory above the interpreter (``/root``) is closed to others, cover it with an
    empty tmpfs holding only the interpreter's tree, so the dropped uid can run Python."""
    parts = prefix.strip("/").split("/")
    for i in range(1, len(parts)):
        closed = "/" + "/".join(parts[:i])
        if not os.stat(closed).st_mode & 0o001:
            keep = os.open(prefix, os.O_PATH | os.O_DIRECTORY)
            mount("tmpfs", closed, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64k")
            os.makedirs(prefix)
            mount(f"/proc/self/fd/{keep}", prefix, None, MS_BIND | MS_REC)
            return


def reachable(prefix: str) -> bool:
    """Whether every directory above ``prefix`` lets others through."""
    parts = prefix.strip("/").split("/")
    return all(os.stat("/" + "/".join(parts[:i])).st_mode & 0o001 for i in range(1, len(parts)))


def limit() -> None:
    """The resource limits of the untrusted process (inherited by its children)."""
    mb = 1 << 20
    for res, value in ((resource.RLIMIT_CPU, cfg["cpu_s"]),
                       (resource.RLIMIT_AS, cfg["memory_mb"] * mb),
                       (resource.RLIMIT_DATA, cfg["memory_mb"] * mb),
                       (resource.RLIMIT_FSIZE, cfg["file_mb"] * mb),
                       (resource.RLIMIT_NOFILE, cfg["max_files"]),
                       (resource.RLIMIT_NPROC, cfg["nproc"]),
                       (resource.RLIMIT_CORE, 0)):
        if value is not None:
            hard = value + 1 if res == resource.RLIMIT_CPU else value  # SIGXCPU, then SIGKILL
            resource.setrlimit(res, (value, hard))


def run_untrusted() -> None:
    """Limits, the unprivileged uid, then exec: this process becomes the untrusted code."""
    limit()
    uid = cfg["uid"]
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(cfg["workdir"])
    os.execve(cfg["python"], [cfg["python"], "-I", "-S", cfg["script"]], cfg["env"])


def init(child: int) -> None:
    """PID 1 of the namespace: reap every orphan until the code exits, then report how it ended;
    when this process exits the kernel kills whatever is left in the namespace."""
    while True:
        pid, status = os.wait()
        if pid == child:
            break
    if os.WIFSIGNALED(status):
        report(signal=os.WTERMSIG(status))
    else:
        report(exit_code=os.WEXITSTATUS(status))
    os._exit(0)


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    names = unshare() if cfg["namespaces"] else set()
    root = os.geteuid() == 0
    if "mnt" not in names and cfg["uid"] is not None and not reachable(cfg["prefix"]):
        cfg["uid"] = None  # the dropped uid could not even start Python: stay root
    if "pid" in names:
        pid = os.fork()  # the first child is PID 1 of the new namespace
        if pid:
            report(init_pid=pid)
            _, status = os.waitpid(pid, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    fs = filesystem(names)
    who = f"uid {cfg['uid']}" if cfg["uid"] is not None else \
        f"uid {cfg['outer_uid']} (unchanged{', root' if cfg['outer_uid'] == 0 else ''})"
    report(isolation={
        "network": "namespace (no interfaces up)" if "net" in names else "none",
        "processes": ("PID namespace" if "pid" in names else "process group only")
                     + (f", RLIMIT_NPROC {cfg['nproc']}" if cfg["nproc"] else "")
                     + (" (not enforced for root)" if cfg["uid"] is None and root else ""),
        "filesystem": fs,
        "user": who + (" in a user namespace" if "user" in names else "")})
    if "pid" not in names:
        os.set_inheritable(info_fd, False)
        run_untrusted()
    child = os.fork()
    if child == 0:
        os.set_inheritable(info_fd, False)
        run_untrusted()
    init(child)


if __name__ == "__main__":
    try:
        main()
    except BaseException as err:  # noqa: BLE001 - the parent reports it as sandbox_error
        sys.stderr.write(f"rlcore sandbox: could not start the code: {err!r}\n")
        os._exit(125)

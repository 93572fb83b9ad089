"""Process supervision for the benchmark: pinned spawns, readiness waits, and a kill-everything exit."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """An ephemeral loopback port (bind 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cores() -> tuple[int, int]:
    """(proxy core, load core): 0 and 1 on a 2-core machine; both 0 if only one core is visible."""
    avail = sorted(os.sched_getaffinity(0))
    return (avail[0], avail[1]) if len(avail) > 1 else (avail[0], avail[0])


class Supervisor:
    """Owns every child process; each runs in its own session so its whole group can be killed."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        atexit.register(self.stop_all)

    def spawn(self, name: str, argv: list[str], cpu: int | None, env: dict[str, str] | None = None,
              cwd: str | None = None) -> subprocess.Popen[bytes]:
        if name in self.procs:
            raise RuntimeError(f"process `{name}` already running")
        cmd = ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=full_env, cwd=cwd, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str, timeout: float = 3.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            _kill_trees([proc], timeout)

    def stop_all(self, timeout: float = 2.0) -> None:
        """SIGTERM every tree at once, give them `timeout` together, then SIGKILL what is left."""
        procs = list(self.procs.values())
        self.procs.clear()
        _kill_trees(procs, timeout)


def _kill_trees(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    # some children start their own session (the SDK's stdio client does), so signal every descendant
    # by pid as well as each group
    trees = [(proc, [(pid, _started(pid)) for pid in _tree(proc.pid)]) for proc in procs]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + timeout
            for proc, _ in trees:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for proc, pids in trees:
            for pid, started in pids:
                if started is None or _started(pid) != started:
                    continue  # gone, or the pid now belongs to some other process
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
    for proc, _ in trees:
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            pass


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=0.5) as resp:
                if resp.status == 200:
                    return
                last = f"status {resp.status}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s: {last}")


def rss_kib(pid: int) -> int:
    """Resident set of a process and all its descendants, in KiB (from /proc)."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree (all threads), from /proc/<pid>/stat fields 14-15."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _started(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return out
    for k in kids:
        out.extend(_tree(int(k)))
    return out

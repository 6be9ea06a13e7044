"""Processes and the machine, for the bench: start, pin, wait for and stop servers; read their
CPU and memory from /proc; say what else was running.

Every server runs in its own process group so that stopping it stops what it started too
(``gateway serve --workers 2`` has children; so has ``litellm``).
"""

from __future__ import annotations

import os
import platform
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVER_CORE, LOAD_CORE = "0", "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: str, *cmd: str) -> list[str]:
    return ["taskset", "-c", core, *cmd]


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


@contextmanager
def background(cmd: list[str], log: Path, **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Runs ``cmd`` in its own process group, output to ``log``; always stops it on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kw,
        )
        try:
            yield proc
        finally:
            stop(proc)


def wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> int:
    """Waits for a ``LISTENING <port>`` line (the fake upstream, the OTLP sink)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("LISTENING "):
                return int(line.split()[1])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{log.stem} did not start:\n{log.read_text()[-2000:]}")


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30.0,
               headers: dict[str, str] | None = None) -> None:
    """Polls ``url`` until it answers 200; the server's log tail when it exits or times out."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{log.stem} exited with {proc.returncode}:\n"
                f"{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                        timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:300]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.2)
    raise RuntimeError(
        f"{log.stem} not ready after {timeout:.0f} s ({last}):\n"
        f"{log.read_text(errors='replace')[-3000:]}"
    )


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (``gateway serve --workers N``'s workers)."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def _is_loopback(hex_addr: str) -> bool:
    """``/proc/net/tcp{,6}``'s address column: 0100007F:1F90, or 32 hex digits for IPv6."""
    addr = hex_addr.split(":")[0]
    if len(addr) == 8:
        return addr.endswith("7F") or addr == "00000000"  # 127.x.x.x (little endian), unset
    # IPv6: four little-endian words. ::, ::1, and ::ffff:127.x.x.x.
    if addr in ("0" * 32, "0" * 24 + "01000000"):
        return True
    return addr.startswith("0000000000000000FFFF0000") and addr.endswith("7F")


def foreign_connections(pids: list[int]) -> list[str]:
    """The TCP connections of ``pids`` to anything but loopback, as ``remote-address`` strings.

    A snapshot (a connection opened and closed between two looks is missed); the bench takes
    one after start-up and one after the load.
    """
    inodes: set[str] = set()
    for pid in pids:
        inodes |= _socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[9] in inodes and not _is_loopback(cols[2]):
                found.append(cols[2])
    return found


def _jiffies() -> list[int]:
    """Whole-machine CPU ticks: user nice system idle iowait irq softirq steal."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return [0] * 8


def _our_cpu_s() -> float:
    """CPU seconds of this script and its waited-for children (servers, load generators)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class CpuWatch:
    """What disturbed a run: CPU stolen by the hypervisor, and CPU used by processes not ours."""

    def __init__(self) -> None:
        self.jiffies, self.ours = _jiffies(), _our_cpu_s()

    def report(self) -> dict[str, float]:
        delta = [a - b for a, b in zip(_jiffies(), self.jiffies, strict=True)]
        total = sum(delta)
        if total <= 0:
            return {}
        tick = os.sysconf("SC_CLK_TCK")
        busy_s = (total - delta[3] - delta[4] - delta[7]) / tick
        other_s = max(0.0, busy_s - (_our_cpu_s() - self.ours))
        return {
            "steal_percent": round(100 * delta[7] / total, 1),
            "other_processes_percent": round(100 * other_s * tick / total, 1),
        }


def busy_percent(seconds: float = 1.0) -> float:
    """How busy the machine is before we start (other people's tests skew everything)."""
    before = _jiffies()
    time.sleep(seconds)
    delta = [a - b for a, b in zip(_jiffies(), before, strict=True)]
    return round(100 * (1 - (delta[3] + delta[4]) / sum(delta)), 1) if sum(delta) else 0.0


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git_rev": rev or "uncommitted",
    }

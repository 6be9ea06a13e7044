"""Real servers for tests, started from the installed binaries on free loopback ports.

A missing binary is an error, never a skip: ``bash scripts/test.sh`` installs them.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class RedisServer:
    """``redis-server``; can be stopped (SIGKILL) and started again on its port.

    Without persistence by default. ``durable=True`` turns on the append-only file with an
    fsync per write, so every write Redis acknowledged is there after a restart (outage
    tests that check nothing acknowledged was lost).
    """

    def __init__(self, workdir: Path, *, durable: bool = False):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `bash scripts/test.sh`, "
                               "which installs it")
        self.binary = binary
        self.workdir = workdir
        self.durable = durable
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        persistence = (["--appendonly", "yes", "--appendfsync", "always"] if self.durable
                       else ["--appendonly", "no"])
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


def _postgres_bindir() -> Path:
    """The directory of ``initdb``, ``postgres``, ``pg_isready`` and ``psql``."""
    candidates = []
    if (initdb := shutil.which("initdb")) is not None:
        candidates.append(Path(os.path.realpath(initdb)).parent)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version,
                                           reverse=True)]
    for bindir in candidates:
        if all((bindir / b).is_file() for b in ("initdb", "postgres", "pg_isready", "psql")):
            return bindir
    raise RuntimeError("PostgreSQL is not installed (initdb, postgres): run "
                       "`bash scripts/test.sh`, which installs it")


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port, with password (SCRAM) auth.

    Durability is off (``fsync``, ``synchronous_commit``): the cluster lives for the tests.
    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
    system user and its programs run through ``setpriv``. :meth:`stop` then :meth:`start`
    brings the same cluster back on the same port (outage tests); :meth:`close` stops it
    and removes its files.
    """

    user = "gateway"

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.password = secrets.token_urlsafe(18)
        self.port = _free_port()
        # Not pytest's tmp_path: as root that is private to root, and postgres must enter it.
        self.root = Path(tempfile.mkdtemp(prefix="gw-pg-"))
        self.datadir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("PostgreSQL refuses to run as root and there is no "
                                   "`postgres` user to run it as: run `bash scripts/test.sh`, "
                                   "which installs PostgreSQL and its user") from None
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise RuntimeError("running as root, the tests need setpriv (util-linux) to "
                                   "start PostgreSQL as the `postgres` user")
            self._as_user = [setpriv, f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
                             "--init-groups", "--"]
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        """The DSN of the ``postgres`` database (password included)."""
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        os.chown(pwfile, self.root.stat().st_uid, self.root.stat().st_gid)
        done = subprocess.run(
            [*self._as_user, str(self.bindir / "initdb"), "-D", str(self.datadir),
             "-U", self.user, f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.root, check=False)
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout.decode(errors='replace')}")

    def start(self, timeout: float = 30) -> PostgresServer:
        if not self.datadir.exists():
            self._initdb()
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [*self._as_user, str(self.bindir / "postgres"), "-D", str(self.datadir),
                 "-p", str(self.port), "-h", "127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n"
                                   + self.log_path.read_text(errors="replace")[-4000:])
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                 "-t", "1"], check=False)
            if ready.returncode == 0:
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"postgres not ready on 127.0.0.1:{self.port} after "
                                   f"{timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, the data stays for :meth:`start`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with ``psql``; return its unaligned output."""
        done = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database,
             "-c", statement],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its DSN."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

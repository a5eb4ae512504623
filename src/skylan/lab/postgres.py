"""A private, throw-away PostgreSQL cluster for tests and benchmarks.

It listens only on a Unix socket in its own directory (no TCP port at all),
runs as the ``postgres`` system user because PostgreSQL refuses to run as
root, and is stopped and deleted on ``close()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from skylan.lab.errors import LabError
from skylan.lab.procs import stop_process


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise LabError("PostgreSQL is not installed (Debian package 'postgresql')")
    return Path(found[-1]).parent


class PostgresCluster:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="skylan-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.port = 5432  # only names the socket file; nothing listens on TCP
        self._started = False
        self._reaper: subprocess.Popen[bytes] | None = None
        self.root.chmod(0o755)
        self.sockets.mkdir()
        shutil.chown(self.sockets, "postgres", "postgres")
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        try:
            self._as_postgres(
                ["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            )
            self._as_postgres(
                [
                    "pg_ctl",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.data / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    f"-c listen_addresses='' -k {self.sockets} -p {self.port} "
                    "-c fsync=off -c synchronous_commit=off -c max_connections=300",
                    "start",
                ]
            )
            self._started = True
            # stops the cluster even if this process is killed outright
            self._reaper = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "skylan.lab.reaper",
                    "postgres",
                    str(self.root),
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            self.close()
            raise

    def _as_postgres(self, cmd: list[str]) -> str:
        argv = ["runuser", "-u", "postgres", "--", str(self.bindir / cmd[0]), *cmd[1:]]
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=120, check=False, cwd=self.root
        )
        if proc.returncode != 0:
            raise LabError(f"{cmd[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._as_postgres(
            [
                "psql",
                "-h",
                str(self.sockets),
                "-p",
                str(self.port),
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ]
        )

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its SQLAlchemy URL."""
        if not name.replace("_", "").isalnum():
            raise LabError(f"bad database name {name!r}")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.sockets}&port={self.port}"

    def close(self) -> None:
        if self._started:
            self._started = False
            stop_cluster(self.root)
            if self._reaper is not None:
                stop_process(self._reaper, grace=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def stop_cluster(root: Path) -> None:
    """Stop the cluster under ``root`` (if running) and delete it."""
    data = root / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(_bindir() / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    shutil.rmtree(root, ignore_errors=True)


def available() -> str | None:
    """None if a cluster can be started here, else why not."""
    if os.geteuid() != 0:
        return "starting PostgreSQL as the postgres user needs root"
    try:
        _bindir()
    except LabError as exc:
        return str(exc)
    return None

"""A throwaway PostgreSQL server from Debian's ``postgresql`` package, on a free port of
127.0.0.1, for testing the job's PostgreSQL path (pg8000) and the dashboard's read-only role.

As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root), in a
folder of its own under /tmp (pytest's folders are private to root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.conditions import unavailable
from tests.support.kafka import free_port

SUPERUSER_PASSWORD = "test-superuser"


def server_binaries() -> Path | None:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    return versions[-1].parent if versions else None


class LocalPostgres:
    def __init__(self) -> None:
        binaries = server_binaries()
        if binaries is None:
            unavailable("no PostgreSQL server (Debian package postgresql; .ci/run installs it)")
        self.bin = binaries
        self.home = Path(tempfile.mkdtemp(prefix="pipeline-postgres-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.home, "postgres", "postgres")

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> None:
        password_file = self.home / "pw"
        password_file.write_text(SUPERUSER_PASSWORD + "\n")
        if self.as_root:
            shutil.chown(password_file, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth-host=scram-sha-256", "--auth-local=peer", f"--pwfile={password_file}",
        )  # fmt: skip
        self.resume()

    def resume(self) -> None:
        """Start the server (again, after :meth:`halt`) on the same port and data."""
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
        # -w: pg_ctl itself polls until the server accepts connections (60 s at most).
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.home / "server.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def halt(self) -> None:
        """Stop the server as an operator would mid-run (fast: open sessions are ended and
        their transactions rolled back), keeping its data for :meth:`resume`."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def url(self, user: str, password: str, database: str = "postgres") -> str:
        return f"postgresql+pg8000://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run statements as the superuser, each in autocommit (CREATE DATABASE needs it)."""
        import pg8000.native

        connection = pg8000.native.Connection(
            "postgres", password=SUPERUSER_PASSWORD, host="127.0.0.1", port=self.port,
            database=database,
        )  # fmt: skip
        try:
            for statement in statements:
                connection.run(statement)
        finally:
            connection.close()

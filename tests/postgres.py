"""A throwaway PostgreSQL cluster owned by the test run (Debian's postgresql, no mocks).

Why here: the store must be tested against a real server, including one that stops and starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="granite-pg-"))
        self.port = _free_port()
        self.data = self.dir / "data"

    def _run(self, command: str, check: bool = True):
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            argv = ["su", "postgres", "-c", command]
        else:
            argv = ["bash", "-c", command]
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        self._run(f"{PG_BIN}/initdb -D {self.data} -A trust -U postgres")

    def start(self) -> None:
        self._run(f"{PG_BIN}/pg_ctl -D {self.data} -w -o '-p {self.port} -k {self.dir} "
                  f"-c listen_addresses=127.0.0.1 -c fsync=on' -l {self.dir}/pg.log start")

    def stop(self) -> None:
        self._run(f"{PG_BIN}/pg_ctl -D {self.data} -w -m fast stop", check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str) -> None:
        subprocess.run([f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       check=True, capture_output=True, timeout=30)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def available() -> bool:
    return (PG_BIN / "initdb").exists()

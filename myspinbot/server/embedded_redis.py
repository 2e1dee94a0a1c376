"""Start, supervise and stop the embedded redis-server that serves one data dir."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import embedded_redis_url, embedded_socket_path
from ..lifeline import death_signal_preexec
from .processes import (
    PidLock,
    ProcessInfo,
    pid_alive,
    process_info,
    read_pid,
    run_on_spawner_thread,
    terminate_and_wait,
)
from .redis_binary import RedisSetupError, ServerBuild, choose_server

logger = logging.getLogger("myspinbot.redis")

_START_TIMEOUT = 10.0  # for the first answer to PING
_LOAD_TIMEOUT = 300.0  # while it answers LOADING, a big AOF is still being read
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 10.0
_STABLE_RUN = 30.0  # a run shorter than this counts as a quick failure
_MAX_QUICK_FAILURES = 10
# How long the lock of a data dir whose server is dead may stay held: by the processes on
# their way out after it (its redis-server, a child redis forked for a rewrite).
_LOCK_GRACE = 5.0


def _ping(path: Path) -> str:
    """One PING over the socket: the reply line, or "" if nobody answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(256).decode(errors="replace")
    except OSError:
        return ""


class EmbeddedRedis:
    """One redis-server for one data dir: unix socket only, AOF on, never evicts."""

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: str | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self._explicit_binary = binary
        self._data_dir = Path(data_dir).expanduser().resolve()
        self._dir = self._data_dir / "redis"
        self._pidfile, self._log = self._dir / "redis.pid", self._dir / "redis.log"
        self._socket = embedded_socket_path(self._data_dir)
        self._on_restart = on_restart
        self._binary = ""
        self.build: ServerBuild | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._lock = PidLock(self._dir / "lock")
        self._mutex = threading.Lock()  # serializes (re)spawning against stop()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return embedded_redis_url(self._data_dir)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start redis-server and return once it answers PING."""
        if self._lock.fd is not None:
            if self.pid is None:  # started before and died unsupervised: just respawn
                with self._mutex:
                    self._remove_stale_files()
                    self._spawn_and_wait()
            return
        self._stopping.clear()
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            recorded = self._recorded_build()
            chosen = choose_server(self._explicit_binary, recorded)
            self._binary, self.build = chosen.path, chosen.build
            if recorded is not None and recorded != self.build:
                logger.info("data dir last ran %s; now %s", recorded.label, self.build.label)
            self._prepare_socket_dir()
            self._remove_stale_files()
            with self._mutex:
                self._spawn_and_wait()
            tmp = self._dir / "VERSION.tmp"
            tmp.write_text(self.build.to_record() + "\n")
            tmp.replace(self._dir / "VERSION")
        except BaseException:
            self.stop()
            raise
        logger.info("embedded %s started (pid %s) on %s", self.build.label, self.pid, self.url)

    def supervise(self) -> None:
        """Restart redis-server in a background thread whenever it dies, until stop()."""
        if self._proc is None:
            raise RuntimeError("EmbeddedRedis.supervise() needs start() first")
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(
                target=self._supervise_loop, name="redis-supervisor", daemon=True
            )
            self._supervisor.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop redis-server (flushing the AOF), release the data dir, remove its socket."""
        self._stopping.set()
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join(timeout)
        with self._mutex:
            if self._proc is not None:
                self._terminate(self._proc, timeout)
                self._proc = None
                logger.info("embedded redis stopped")
            if self._lock.fd is not None:
                self._remove_stale_files()
                if self._socket.parent != self._dir:
                    # Not empty or already gone: leaving it is harmless.
                    with contextlib.suppress(OSError):
                        self._socket.parent.rmdir()
                self._lock.release()  # redis-server, the other holder, is gone

    # -- start-up -------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        deadline = time.monotonic() + _LOCK_GRACE
        waited = False
        while not (self._lock.acquire() or (self._end_orphan() and self._lock.acquire())):
            owner = self._lock.owner() or read_pid(self._pidfile)
            if (owner and pid_alive(owner)) or time.monotonic() >= deadline:
                raise RedisSetupError(
                    f"another MySpinBot server is already using data dir {self._data_dir} "
                    f"(pid {owner or 'unknown'}); stop it or choose another MYSPINBOT_DATA_DIR"
                )
            if not waited:
                logger.info("the server of %s is gone; waiting for its lock", self._data_dir)
                waited = True
            time.sleep(0.05)

    def _end_orphan(self) -> bool:
        """End a redis-server of this data dir whose owner is gone; return whether one was ended."""
        info = self._our_server(read_pid(self._pidfile))
        if info is None:
            return False
        if info.ppid == self._lock.owner():
            return False  # the owner that took the lock is alive and still its parent
        logger.warning("ending orphaned redis-server (pid %d) of %s", info.pid, self._data_dir)
        return terminate_and_wait(info.pid)

    def _our_server(self, pid: int | None) -> ProcessInfo | None:
        """The running redis-server of this data dir with this pid, if there is one."""
        info = process_info(pid) if pid else None
        # redis-server chdirs to its `dir`, which tells this data dir's server from others.
        named = info is not None and info.name.startswith(("redis-server", "valkey-server"))
        return info if named and info.cwd in (None, self._dir) else None

    def _recorded_build(self) -> ServerBuild | None:
        """The server that last ran this data dir, as its VERSION file says (None: fresh)."""
        version_file = self._dir / "VERSION"
        if version_file.exists():
            return ServerBuild.from_record(version_file.read_text())
        # Redis 7 keeps its AOF in appendonlydir/; an older server ignores it and starts empty.
        if (self._dir / "appendonlydir").is_dir():
            return ServerBuild("redis", (7, 0, 0))
        return None

    def _prepare_socket_dir(self) -> None:
        runtime = self._socket.parent
        if runtime == self._dir:
            return
        with contextlib.suppress(FileExistsError):
            runtime.mkdir(mode=0o700)
        # /tmp is shared: refuse a directory someone else made or can write into.
        st = os.lstat(runtime)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise RedisSetupError(
                f"{runtime} (socket dir for {self._data_dir}) must be a directory owned by "
                f"this user with mode 0700; remove it or choose a shorter MYSPINBOT_DATA_DIR"
            )

    def _remove_stale_files(self) -> None:
        """Remove pidfile and socket; only called while holding the lock, so no owner is alive."""
        running = self._proc is not None and self._proc.poll() is None
        unowned = None if running else self._our_server(read_pid(self._pidfile))
        if unowned is not None:
            # We hold the lock, so this server of our dir has no owner to answer to.
            logger.warning(
                "ending unowned redis-server (pid %d) of %s", unowned.pid, self._data_dir
            )
            terminate_and_wait(unowned.pid)
        for path in (self._pidfile, self._socket):
            path.unlink(missing_ok=True)

    def _server_args(self) -> list[str]:
        return [
            self._binary,
            *("--port", "0"),
            *("--unixsocket", str(self._socket)),
            *("--unixsocketperm", "700"),
            *("--appendonly", "yes"),
            *("--appendfsync", "everysec"),
            *("--maxmemory-policy", "noeviction"),
            *("--save", ""),
            *("--dir", str(self._dir)),
            *("--pidfile", str(self._pidfile)),
            *("--logfile", str(self._log)),
            *("--daemonize", "no"),
            *("--maxclients", "10000"),  # redis lowers it to what the fd limit allows
        ]

    def _popen(self) -> subprocess.Popen[bytes]:
        assert self._lock.fd is not None
        # Early errors (bad option) reach stderr before redis opens its log file.
        with open(self._log, "ab") as log:
            return subprocess.Popen(
                self._server_args(),
                cwd=self._dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(self._lock.fd,),  # redis holds the data dir's lock as long as it lives
                start_new_session=True,  # a Ctrl-C in the terminal is ours to relay, not redis's
                preexec_fn=death_signal_preexec(signal.SIGTERM),
            )

    def _spawn_and_wait(self) -> None:
        """Spawn redis-server and wait for PING; the caller holds self._mutex."""
        self._started_at = time.monotonic()
        try:
            self._proc = run_on_spawner_thread(self._popen)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RedisSetupError(f"cannot start {self._binary}: {exc}") from exc
        try:
            self._wait_ready(self._proc)
        except RedisSetupError:
            self._terminate(self._proc, 5.0)
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        start_deadline = self._started_at + _START_TIMEOUT
        load_deadline = self._started_at + _LOAD_TIMEOUT
        while True:
            reply = _ping(self._socket)
            if reply.startswith("+PONG"):
                return
            now = time.monotonic()
            if proc.poll() is not None:
                problem = f"redis-server exited with code {proc.returncode} while starting"
            elif now > (load_deadline if reply.startswith("-LOADING") else start_deadline):
                problem = f"redis-server did not answer PING in time (last reply {reply!r})"
            elif self._stopping.wait(0.05):
                problem = "stop() was called while redis-server was starting"
            else:
                continue
            raise RedisSetupError(f"{problem}; see {self._log}:\n{self._tail()}")

    def _tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
        # SIGTERM runs the same shutdown as SHUTDOWN: fsync the AOF, remove socket and pidfile.
        if proc.poll() is None:
            proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
            return
        logger.error("redis-server %d ignored SIGTERM for %.0fs; killing it", proc.pid, timeout)
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # only a hung kernel call is left
            proc.wait(5.0)

    # -- supervision ----------------------------------------------------------------------

    def _supervise_loop(self) -> None:
        backoff, quick_failures = _BACKOFF_FIRST, 0
        while True:
            proc = self._proc
            while proc is not None and proc.poll() is None:
                if self._stopping.wait(0.2):
                    return
            if self._stopping.is_set() or proc is None:
                return
            ran = time.monotonic() - self._started_at
            if ran >= _STABLE_RUN:
                backoff, quick_failures = _BACKOFF_FIRST, 0
            else:
                quick_failures += 1
            if quick_failures >= _MAX_QUICK_FAILURES:
                logger.error("redis-server keeps failing; not restarting it, see %s", self._log)
                return
            code, pid = proc.returncode, proc.pid
            logger.warning(
                "redis-server %d exited (%s) after %.0fs; restart in %.1fs", pid, code, ran, backoff
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, _BACKOFF_MAX)
            if self._restart():
                self._notify_restart()

    def _restart(self) -> bool:
        with self._mutex:
            if self._stopping.is_set():
                return False
            try:
                self._remove_stale_files()
                self._spawn_and_wait()
            except RedisSetupError as exc:
                if not self._stopping.is_set():
                    logger.error("restarting redis-server failed: %s", exc)
                return False
        logger.warning("redis-server restarted (pid %s)", self.pid)
        return True

    def _notify_restart(self) -> None:
        if self._on_restart is None:
            return
        try:
            self._on_restart()
        except Exception:
            logger.exception("on_restart callback failed after a redis-server restart")

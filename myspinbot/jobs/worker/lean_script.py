"""Lua scripts called on a connection of the calling thread's own: the worker's hot path.

redis-py's `Script` goes through the client's per-command layers (a pool check-out and
check-in, the retry wrapper, its event dispatch and argument filters) for each call; a
worker makes one or two calls per job, and those layers were about half of its time.
Here each thread keeps one connection and sends EVALSHA on it directly. Errors are the
same as redis-py's: a lost connection raises ConnectionError or TimeoutError (the ledger
retries), and a Redis that forgot the script (it restarted) gets it again at once. The
connections are the script's own, outside the client's pool: `close()` closes them.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import redis
from redis.exceptions import NoScriptError


class LeanScript:
    """Call like redis-py's Script: `script(keys=[…], args=[…])`."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.pool = client.connection_pool
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._local = threading.local()
        self._opened: list[Any] = []  # every thread's connection, for close()
        self._opened_lock = threading.Lock()

    def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        connection = self._connection()
        try:
            try:
                return self._run(connection, "EVALSHA", self.sha, keys, args)
            except NoScriptError:
                return self._run(connection, "EVAL", self.source, keys, args)
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # the next call starts on a fresh socket
            raise

    @staticmethod
    def _run(connection: Any, command: str, script: str, keys: list[Any], args: list[Any]) -> Any:
        connection.send_command(command, script, len(keys), *keys, *args)
        return connection.read_response()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.pool.connection_class(**self.pool.connection_kwargs)
            self._local.connection = connection
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def close(self) -> None:
        """Close every thread's connection; a later call opens its socket again."""
        with self._opened_lock:
            opened = list(self._opened)
        for connection in opened:
            connection.disconnect()

"""Two worker replicas that see the same hostname and the same PID, as containers do.

Each replica runs as PID 1 of a PID namespace of its own, under one hostname (`unshare
--uts --pid --fork`, as root or in a user namespace), which is what two containers of one
image on `--network host` or in one pod look like to the worker.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from reliability_support import api_server, redis_server, reliability_env
from skips import skip_because
from support import ROOT, wait_until

from myspinbot.jobs import keys
from myspinbot.jobs.model import now_ms

HOSTNAME = "replica"
STARTED = re.compile(r"worker (\S+) started")


def unshare_prefix() -> list[str]:
    """The command line that gives a process PID 1 and the hostname HOSTNAME, or a skip."""
    if shutil.which("unshare") is None:
        skip_because("namespace tests", "no unshare(1)", "apt-get install util-linux")
    prefix = ["unshare", "--uts", "--pid", "--fork", "--kill-child=SIGKILL"]
    if os.geteuid() != 0:
        prefix.insert(1, "--map-root-user")  # a user namespace lets us own the other two
    probe = subprocess.run([*prefix, "sh", "-c", "echo $$"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        skip_because(
            "namespace tests",
            f"unshare --pid refused here ({probe.stderr.strip()[:80]})",
            "run as root or allow user namespaces",
        )
    return prefix


class NamespacedReplica:
    """`myspinbot worker --queue generate` as PID 1 of its own PID namespace."""

    def __init__(self, prefix: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        command = f'hostname {HOSTNAME} && exec "$@"'
        self.proc = subprocess.Popen(
            [*prefix, "sh", "-c", command, "sh", sys.executable, "-m", "myspinbot.cli"]
            + ["worker", "--queue", "generate"],
            cwd=ROOT,
            env=env,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def identity(self) -> str:
        found = STARTED.search(self.log_path.read_text(errors="replace"))
        return found.group(1) if found else ""

    def worker_pid(self) -> int:
        """The worker's PID as this test sees it: the one child of `unshare`."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return int(children.split()[0])

    def stop(self) -> None:
        """A graceful stop (SIGINT, the image's STOPSIGNAL), waited for."""
        if self.proc.poll() is None:
            os.kill(self.worker_pid(), signal.SIGINT)
            self.proc.wait(20)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # --kill-child takes the worker with it
            self.proc.wait(10)


@pytest.fixture()
def pair(redis_binary: str, tmp_path: Path) -> Iterator[tuple[list[NamespacedReplica], ...]]:
    prefix = unshare_prefix()
    with redis_server(redis_binary, tmp_path / "redis") as store:
        env = reliability_env(tmp_path / "data", store.url, MYSPINBOT_INPROCESS_WORKERS="0")
        with api_server(tmp_path / "data", env) as server:
            group = [NamespacedReplica(prefix, env, tmp_path / f"r{i}.log") for i in range(2)]
            client = store.client()
            try:
                yield group, server, client
            finally:
                for replica in group:
                    replica.kill()
                client.close()


def live_identities(client: redis.Redis) -> set[str]:
    cutoff = now_ms() - keys.WORKER_TTL_MS
    return set(client.zrangebyscore(keys.workers("generate"), cutoff, "+inf"))


def test_replicas_with_one_hostname_and_pid_are_two_workers(pair) -> None:
    group, server, client = pair
    identities = [wait_until(replica.identity, 60, "worker start") for replica in group]
    assert identities[0] != identities[1], "two replicas, one identity"
    assert all(i.startswith(f"{HOSTNAME}:1:") for i in identities), identities

    wait_until(lambda: live_identities(client) == set(identities), 30, "both heartbeats")
    with server.client() as http:
        assert http.get("/health").json()["workers"]["generate"] == 2

    stopped, other = group
    stopped.stop()
    assert stopped.proc.returncode == 0
    # The stop removed its own heartbeat only: the other's is still there, unrefreshed.
    assert live_identities(client) == {other.identity()}
    with server.client() as http:
        assert http.get("/health").json()["workers"]["generate"] == 1

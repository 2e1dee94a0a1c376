"""The container engine as the image tests drive it: its CLI, health checks run by hand.

Podman 4.3 schedules health checks with systemd timers, which our machines lack, so a
check runs when a test asks (`podman healthcheck run`); Docker runs them itself and the
tests read the status it records.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from support import wait_until

TIMEOUT = 180  # seconds for one engine command (a pull-free build step, a stop)


@dataclass
class Engine:
    """`podman` or `docker`, with what a test created, removed again at the end."""

    name: str
    image: str
    prefix: str
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)

    def __call__(
        self, *args: str, check: bool = True, timeout: float = TIMEOUT, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.name, *args], capture_output=True, text=True, timeout=timeout, **kwargs
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name} {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def run(self, name: str, *options: str, command: Sequence[str] = ()) -> str:
        """`run -d` the image under test as container `<prefix>-<name>`."""
        return self.run_image(self.image, name, *options, command=command)

    def run_image(self, image: str, name: str, *options: str, command: Sequence[str] = ()) -> str:
        full = f"{self.prefix}-{name}"
        self.containers.append(full)
        self("run", "-d", "--name", full, *options, image, *command)
        return full

    def volume(self, name: str) -> str:
        full = f"{self.prefix}-{name}"
        self.volumes.append(full)
        return full

    def network(self, name: str) -> str:
        full = f"{self.prefix}-{name}"
        self("network", "create", full)
        self.networks.append(full)
        return full

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(self("inspect", container).stdout)[0]

    def exit_code(self, container: str) -> int:
        return int(self.inspect(container)["State"]["ExitCode"])

    def logs(self, container: str) -> str:
        result = self("logs", container, check=False)
        return result.stdout + result.stderr

    def exec(self, container: str, *command: str, check: bool = True) -> str:
        return self("exec", container, *command, check=check).stdout

    def healthy(self, container: str) -> bool:
        """One health check of the container, as its HEALTHCHECK (or compose) defines it."""
        if self.name == "podman":
            return self("healthcheck", "run", container, check=False).returncode == 0
        health = self.inspect(container)["State"].get("Health") or {}
        return health.get("Status") == "healthy"

    def wait_healthy(self, container: str, timeout: float = 90) -> None:
        def check() -> bool:
            state = self.inspect(container)["State"]
            if not state["Running"]:
                raise AssertionError(f"{container} exited:\n{self.logs(container)[-3000:]}")
            return self.healthy(container)

        wait_until(check, timeout, f"{container} healthy")

    def stop(self, container: str, seconds: int = 30) -> int:
        """Stop with the image's STOPSIGNAL; the container's exit code."""
        self("stop", "-t", str(seconds), container, timeout=seconds + 60)
        return self.exit_code(container)

    def remove_all(self) -> None:
        for container in reversed(self.containers):
            self("rm", "-f", "-v", "-t", "0", container, check=False)  # -v: anonymous volumes
        for volume in self.volumes:
            self("volume", "rm", "-f", volume, check=False)
        for network in self.networks:
            self("network", "rm", "-f", network, check=False)

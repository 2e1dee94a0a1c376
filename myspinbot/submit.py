"""`myspinbot submit`: send a job through the REST API, follow it over /ws, print its artifacts."""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import shutil
import socket
import sys
import time
import uuid
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urljoin

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from .config import Settings, SettingsError

Job = dict[str, Any]
EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 2}
QUIET_POLL = 10.0  # seconds without a frame before asking GET /api/status/<id> directly
RECONNECT_FOR = 60.0  # seconds of failed reconnects before giving up
POST_ATTEMPTS = 3  # safe to repeat: each submit carries its own Idempotency-Key
RETRYABLE_STATUS = (502, 503, 504)
BAR_WIDTH = 24


class SubmitError(Exception):
    """A usage, connection or API error: one line on stderr, exit code 3."""


class Lost(SubmitError):
    """The server cannot be reached right now; another try may work."""


class Unreachable(Lost):
    """Nothing answers at the URL (refused, no such host): perhaps the wrong URL."""


URL_VARIABLE = "MYSPINBOT_URL"  # the server URL when --url is not given


def lost(what: str, exc: BaseException) -> Lost:
    """Lost, or Unreachable when the connection itself could not be made."""
    refused = isinstance(exc, (ConnectionRefusedError, socket.gaierror, httpx.ConnectError))
    return (Unreachable if refused else Lost)(f"{what}: {exc}")


def unreachable_hint(url: str, source: str, exc: Unreachable) -> str:
    """The one line a refused connection ends with: the URL, where it came from, the fix."""
    return (
        f"nothing answers at {url} ({exc}; this URL comes from {source}). Is the server "
        f"running (myspinbot serve)? Point this command at it with --url URL or the "
        f"{URL_VARIABLE} environment variable."
    )


def error_message(status: int, body: bytes) -> str:
    """The API's own message from its error body, else the status and the start of the body."""
    try:
        return str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace").strip()[:200]
        return f"HTTP {status}" + (f": {text}" if text else "")


def server_url(given: str | None) -> tuple[str, str]:
    """The server's URL and where it came from: --url, MYSPINBOT_URL, or the local server."""
    if given:
        return given, "--url"
    if os.environ.get(URL_VARIABLE):
        return os.environ[URL_VARIABLE], URL_VARIABLE
    return default_url(), "MYSPINBOT_HOST / MYSPINBOT_PORT (the local server)"


def default_url() -> str:
    """The local server, as MYSPINBOT_HOST / MYSPINBOT_PORT describe it."""
    settings = Settings.from_env()
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Job:
    try:
        response = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise lost(f"cannot reach {http.base_url}", exc) from None
    if response.is_error:
        kind = Lost if response.status_code in RETRYABLE_STATUS else SubmitError
        raise kind(error_message(response.status_code, response.content))
    try:
        return response.json()
    except ValueError:
        raise SubmitError(f"{method} {path}: the answer is not JSON") from None


class Events:
    """The /ws connection: opened before the job is posted, so no event of it is missed."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.url = "ws" + base_url.removeprefix("http") + "/ws"  # http: -> ws:, https: -> wss:
        self.headers = headers
        self.conn: ClientConnection | None = None

    def connect(self) -> list[Job]:
        """Open the socket and return the snapshot it starts with."""
        self.close()
        try:
            self.conn = connect(
                self.url, additional_headers=self.headers, open_timeout=10, max_size=2**24
            )
        except InvalidStatus as exc:
            status, body = exc.response.status_code, exc.response.body or b""
            kind = Lost if status in RETRYABLE_STATUS else SubmitError
            raise kind(f"{self.url}: {error_message(status, body)}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise lost(f"cannot open {self.url}", exc) from None
        first = self.next(10.0)
        if first is None or first.get("type") != "snapshot":
            raise Lost("the event stream sent no snapshot")
        return list(first["jobs"])

    def next(self, timeout: float) -> Job | None:
        assert self.conn is not None
        try:
            return json.loads(self.conn.recv(timeout=timeout))
        except TimeoutError:
            return None
        except (ConnectionClosed, OSError) as exc:
            self.close()
            raise Lost(f"the event stream closed ({exc})") from None

    def close(self) -> None:
        with suppress(Exception):  # closing a broken connection may complain; it is closed
            if self.conn is not None:
                self.conn.close()
        self.conn = None


class ProgressBar:
    """One `\\r`-redrawn line on a terminal; plain lines, one per change, otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""
        self.drawn = 0

    def show(self, job: Job) -> None:
        percent = max(0, min(100, int(job.get("progress") or 0)))
        text = f"{percent:3d}% {job.get('message') or job['state']}"
        if text == self.last:
            return
        self.last = text
        if self.tty:
            filled = BAR_WIDTH * percent // 100
            line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
            line = line[: shutil.get_terminal_size().columns - 1]
            self.stream.write("\r" + line.ljust(self.drawn))
            self.drawn = len(line)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.drawn = 0


def newer(current: Job, update: Job | None) -> Job:
    """The later of two views of a job (a stale event or poll never moves it backwards)."""
    if update is None or current["state"] in EXIT_CODES:
        return current
    if update["state"] in EXIT_CODES:
        return update
    if update["attempt"] < current["attempt"]:
        return current
    same_run = update["attempt"] == current["attempt"] and update["state"] == current["state"]
    return current if same_run and update["progress"] < current["progress"] else update


def upload(stack: ExitStack, path: Path) -> tuple[str, Any, str]:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.name, stack.enter_context(path.open("rb")), kind


def post_job(http: httpx.Client, args: argparse.Namespace, headers: dict[str, str]) -> Job:
    if args.kind == "generate":
        body = {"prompt": args.prompt, **({"lora": args.lora} if args.lora else {})}
        if args.say:
            body["say"] = args.say
        return call(http, "POST", "/api/generate", json=body, headers=headers)
    with ExitStack() as stack:  # opened per attempt: a retry sends the files from the start
        files = [("images", upload(stack, Path(name))) for name in args.images]
        files.append(("voice", upload(stack, Path(args.voice))))
        data = {"name": args.name} if args.name else None
        return call(http, "POST", "/api/train", files=files, data=data, headers=headers)


def submit(http: httpx.Client, args: argparse.Namespace) -> Job:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    for attempt in range(1, POST_ATTEMPTS):
        with suppress(Lost):
            return post_job(http, args, headers)
        time.sleep(attempt)
    return post_job(http, args, headers)  # its Lost, if any, ends the command


def follow(http: httpx.Client, events: Events, job: Job, bar: ProgressBar) -> Job:
    """Apply this job's events until it finishes; reconnect and resync when the socket drops."""
    status_path = f"/api/status/{job['id']}"
    lost_since: float | None = None
    bar.show(job)
    while job["state"] not in EXIT_CODES:
        try:
            if events.conn is None:
                mine = [j for j in events.connect() if j["id"] == job["id"]]
                job = newer(newer(job, mine[0] if mine else None), call(http, "GET", status_path))
            elif (frame := events.next(QUIET_POLL)) is None:
                job = newer(job, call(http, "GET", status_path))
            elif frame.get("type") == "snapshot":  # the server resynced after missing events
                job = newer(job, next((j for j in frame["jobs"] if j["id"] == job["id"]), None))
            elif frame.get("job", {}).get("id") == job["id"]:
                job = newer(job, frame["job"])
            lost_since = None
        except Lost as exc:
            if lost_since is None:
                bar.end()
                print(f"myspinbot: {exc}; reconnecting", file=sys.stderr)
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > RECONNECT_FOR:
                raise SubmitError(f"gave up after {RECONNECT_FOR:.0f}s: {exc}") from None
            time.sleep(1.0)
        bar.show(job)
    bar.end()
    return job


def report(job: Job, base_url: str) -> int:
    """Artifact URLs on stdout; the outcome on stderr and in the exit code."""
    if job["state"] == "completed":
        for artifact in job.get("artifacts") or []:
            print(urljoin(base_url + "/", artifact["url"]))
    elif job["state"] == "failed":
        reason = (job.get("error") or {}).get("message") or "no reason given"
        print(f"myspinbot: job {job['id']} failed: {reason}", file=sys.stderr)
    else:
        print(f"myspinbot: job {job['id']} was cancelled", file=sys.stderr)
    return EXIT_CODES[job["state"]]


def run_submit(args: argparse.Namespace) -> int:
    """Submit, follow, report: 0 completed, 1 failed, 2 cancelled, 3 usage/connection/API error."""
    bar = ProgressBar(sys.stderr)
    try:
        for name in [*args.images, args.voice] if args.kind == "train" else []:
            if not Path(name).is_file():
                raise SubmitError(f"{name}: no such file")
        given, source = server_url(args.url)
        base_url = given.rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise SubmitError(f"{source} must start with http:// or https://, not {base_url!r}")
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        events = Events(base_url, headers)
        timeout = httpx.Timeout(60.0, connect=10.0)
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as http:
            try:
                events.connect()
                job = submit(http, args)
                print(f"myspinbot: job {job['id']} ({job['kind']}) submitted", file=sys.stderr)
                job = follow(http, events, job, bar)
            finally:
                events.close()
                bar.end()
    except Unreachable as exc:
        print(f"myspinbot: {unreachable_hint(base_url, source, exc)}", file=sys.stderr)
        return 3
    except (SubmitError, SettingsError) as exc:
        print(f"myspinbot: {exc}", file=sys.stderr)
        return 3
    return report(job, base_url)

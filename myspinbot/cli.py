"""The `myspinbot` command: serve, worker, submit, health."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .config import QUEUES, Settings, SettingsError
from .server.listen import ListenError
from .server.redis_binary import RedisSetupError


def _serve(args: argparse.Namespace) -> int:
    from .server.serve import serve

    # HTTP worker processes rebuild their settings from the environment: flags travel there.
    for flag, variable in (
        ("host", "MYSPINBOT_HOST"),
        ("port", "MYSPINBOT_PORT"),
        ("workers", "MYSPINBOT_HTTP_WORKERS"),
    ):
        if getattr(args, flag) is not None:
            os.environ[variable] = str(getattr(args, flag))
    serve(Settings.from_env())
    return 0


def _worker(args: argparse.Namespace) -> int:
    from .jobs.worker.consumers import run_consumer
    from .logs import configure_logging
    from .server.health_check import heartbeat_file

    settings = Settings.from_env()
    configure_logging(settings)
    threads = args.threads or settings.worker_threads
    run_consumer(args.queue, settings, threads, heartbeat_file(args.heartbeat_file))
    return 0


def _health(args: argparse.Namespace) -> int:
    from .server.health_check import heartbeat_file, run_health

    port = args.port or Settings.from_env().port
    path = heartbeat_file(args.heartbeat_file)
    problem = run_health(worker=args.worker, http=args.http, path=path, port=port)
    if problem:
        print(f"myspinbot: unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


def _submit(args: argparse.Namespace) -> int:
    from .submit import run_submit

    return run_submit(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="myspinbot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API, dashboard and in-process workers")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="HTTP worker processes")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run a worker replica for one queue")
    worker.add_argument("--queue", required=True, choices=QUEUES)
    worker.add_argument("--threads", type=int, help="jobs this process runs at once")
    worker.add_argument(
        "--heartbeat-file",
        help="file touched at each heartbeat, for `health --worker` "
        "(default: $MYSPINBOT_HEARTBEAT_FILE, unset: none)",
    )
    worker.set_defaults(run=_worker)

    health = commands.add_parser(
        "health", help="exit 0 when this container's server or worker is healthy"
    )
    role = health.add_mutually_exclusive_group()
    role.add_argument("--worker", action="store_true", help="check the worker's heartbeat file")
    role.add_argument("--http", action="store_true", help="check the server's /health")
    health.add_argument("--heartbeat-file", help="default: $MYSPINBOT_HEARTBEAT_FILE")
    health.add_argument("--port", type=int, help="the server's port (default: $MYSPINBOT_PORT)")
    health.set_defaults(run=_health)

    submit = commands.add_parser("submit", help="submit a job and follow it to the end")
    submit.add_argument(
        "--url",
        default=None,
        help="server URL (default: $MYSPINBOT_URL, else the local server of "
        "MYSPINBOT_HOST / MYSPINBOT_PORT)",
    )
    submit.add_argument(
        "--token",
        default=os.environ.get("MYSPINBOT_API_TOKEN"),
        help="API token (default: $MYSPINBOT_API_TOKEN)",
    )
    kinds = submit.add_subparsers(dest="kind", required=True)
    generate = kinds.add_parser("generate", help="generate a clip from a prompt")
    generate.add_argument("prompt")
    generate.add_argument("--lora", help="id of a completed training job")
    generate.add_argument("--say", help="the line the persona speaks (needs a voice engine)")
    train = kinds.add_parser("train", help="train a personal model")
    train.add_argument("--images", nargs="+", required=True, metavar="FILE")
    train.add_argument("--voice", required=True, metavar="FILE")
    train.add_argument("--name")
    submit.set_defaults(run=_submit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 2 and argv[:1] == ["submit"]:
            return 3  # submit keeps 2 for "cancelled"
        raise
    try:
        return args.run(args)
    except SettingsError as exc:
        print(f"myspinbot: configuration error: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:  # the message names the port or host and how to change it
        print(f"myspinbot: cannot start: {exc}", file=sys.stderr)
        return 2
    except RedisSetupError as exc:  # the message says why and what to do
        print(f"myspinbot: cannot start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

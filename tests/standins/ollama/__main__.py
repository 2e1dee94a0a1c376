"""`python -m tests.standins.ollama`: run the Ollama stand-in (options in the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..serving import serve_until_signalled
from .app import build_app
from .server import DEFAULT_REPLY, Ollama


async def serve(args: argparse.Namespace) -> None:
    models = [m for m in args.models.split(",") if m.strip()]
    thinking = tuple(m for m in args.thinking.split(",") if m.strip())
    ollama = Ollama(models, args.delay, args.reply, args.version, thinking)
    for spec in args.http_fault:
        path, _, rest = spec.partition("=")
        status, _, count = rest.partition(":")
        ollama.cli_faults.append({"path": path, "status": int(status), "count": int(count or 1)})
    await serve_until_signalled(
        build_app(ollama), args.port, args.ready_file, on_stop=ollama.release.set
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standins.ollama")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--models", default="llama3.2")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reply", default=DEFAULT_REPLY)
    parser.add_argument("--version", default="0.0.0")
    parser.add_argument("--thinking", default="")
    parser.add_argument("--http-fault", action="append", default=[])
    asyncio.run(serve(parser.parse_args(sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

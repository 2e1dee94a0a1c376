"""`python -m tests.standins.voice`: run the speech stand-in (options in the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import build_app
from .server import Speaker


async def serve(args: argparse.Namespace) -> None:
    speaker = Speaker(pcm16=args.pcm16, token=args.token, folder=args.voices)
    runner = web.AppRunner(build_app(speaker), access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    partial = args.ready_file.with_name(args.ready_file.name + ".partial")
    partial.write_text(str(runner.addresses[0][1]))
    os.replace(partial, args.ready_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    speaker.release.set()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.standins.voice")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--pcm16", action="store_true")
    parser.add_argument("--voices", type=Path)
    parser.add_argument("--token")
    asyncio.run(serve(parser.parse_args(sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

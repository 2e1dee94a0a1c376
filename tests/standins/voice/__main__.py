"""`python -m tests.standins.voice`: run the speech stand-in (options in the package docstring)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..serving import serve_until_signalled
from .app import build_app
from .server import Speaker


async def serve(args: argparse.Namespace) -> None:
    speaker = Speaker(pcm16=args.pcm16, token=args.token, folder=args.voices)
    await serve_until_signalled(
        build_app(speaker), args.port, args.ready_file, on_stop=speaker.release.set
    )


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

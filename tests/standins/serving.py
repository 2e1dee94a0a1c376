"""How each stand-in process serves: on 127.0.0.1, its port written to a ready file, until
SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

from aiohttp import web


async def serve_until_signalled(
    app: web.Application,
    port: int,
    ready_file: Path,
    *,
    shutdown_timeout: float = 1,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve `app`; the bound port appears in `ready_file` whole (written, then renamed)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    partial = ready_file.with_name(ready_file.name + ".partial")
    partial.write_text(str(runner.addresses[0][1]))
    os.replace(partial, ready_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    if on_stop is not None:
        on_stop()  # lets handlers waiting on the stand-in return before the cleanup
    await runner.cleanup()

"""MySpinBot's server: `python app.py` (the same as `myspinbot serve`).

The application is `myspinbot.app.create_app()`, served by `myspinbot.server.serve`:
one process by default. Nothing is built at import: with several HTTP workers, the
processes Sanic spawns re-import this module, and importing the package only arms
their parent-death signal (see myspinbot/__init__.py).
"""

import myspinbot  # noqa: F401

if __name__ == "__main__":
    import sys

    from myspinbot.cli import main

    sys.exit(main(["serve"]))

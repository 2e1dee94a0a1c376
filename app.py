"""MySpinBot's server: `python app.py` (the same as `myspinbot serve`).

The application itself is `myspinbot.app.create_app()`; each HTTP worker process builds
one through Sanic's loader. The other processes Sanic spawns (its state manager, our
consumers) re-import this module, so it builds nothing at import: importing the package
only arms their parent-death signal (see myspinbot/__init__.py).
"""

import myspinbot  # noqa: F401

if __name__ == "__main__":
    import sys

    from myspinbot.cli import main

    sys.exit(main(["serve"]))

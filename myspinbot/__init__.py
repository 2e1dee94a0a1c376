"""MySpinBot: personal model training and video generation, on a small reliable job spine."""

import os as _os

__version__ = "0.1.0"

MAIN_PID_ENV = "MYSPINBOT_MAIN_PID"


def _die_with_the_server() -> None:
    """In a process the server spawned, ask the kernel to end us when the server dies.

    Every child the server spawns (HTTP workers, consumers, and Sanic's own state
    manager, which we cannot otherwise reach) imports this package first, so this is
    the one place that covers them all; a kill -9 of the server then orphans nothing.
    """
    main = _os.environ.get(MAIN_PID_ENV, "")
    if main.isdigit() and int(main) == _os.getppid():
        import signal

        from .processes import ParentGoneError, arm_parent_death_signal

        try:
            arm_parent_death_signal(signal.SIGTERM, expected_parent=int(main))
        except ParentGoneError:
            _os._exit(1)


_die_with_the_server()

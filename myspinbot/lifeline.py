"""The lifeline of a spawned child: the kernel ends it when the process that spawned it dies.

This sits at the bottom of the package because the package's `__init__` arms it: in the
multi-process layout every Python child (HTTP workers, Sanic's own state manager, which
we cannot otherwise reach) imports the package first, so a kill -9 of the server
orphans nothing. The embedded Redis arms it through `death_signal_preexec`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable

MAIN_PID_ENV = "MYSPINBOT_MAIN_PID"  # set by the server before it spawns Python children
_PR_SET_PDEATHSIG = 1
_LINUX = sys.platform.startswith("linux")


class ParentGoneError(RuntimeError):
    """The parent died before the death signal was armed, so that signal will never come."""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not _LINUX:
        return None
    fn = ctypes.CDLL(None, use_errno=True).prctl
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn


def _arm(prctl: Callable[..., int] | None, sig: int, expected_parent: int | None) -> bool:
    if prctl is not None and prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    # The parent may have died before we armed the signal; the kernel will not send it late.
    if expected_parent is not None and os.getppid() != expected_parent:
        raise ParentGoneError(f"parent process {expected_parent} is gone")
    return prctl is not None


def arm_parent_death_signal(sig: int = signal.SIGTERM, expected_parent: int | None = None) -> bool:
    """Ask the kernel to send `sig` to this process when its parent thread exits.

    Returns False where this is unsupported (non-Linux). Raises ParentGoneError if
    `expected_parent` is given and is no longer our parent: the caller should exit.
    """
    return _arm(_prctl(), sig, expected_parent)


def death_signal_preexec(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """Return a `preexec_fn` that arms `sig` in the child for the calling process's death.

    libc is resolved here, in the parent, so the forked child only makes the call.
    An exception in the child aborts the exec, so a child whose parent already died
    never runs.
    """
    prctl, parent = _prctl(), os.getpid()

    def preexec() -> None:
        _arm(prctl, sig, parent)

    return preexec


def die_with_the_server() -> None:
    """In a Python child the server spawned, arm the death signal (see the module's doc)."""
    main = os.environ.get(MAIN_PID_ENV, "")
    if main.isdigit() and int(main) == os.getppid():
        try:
            arm_parent_death_signal(signal.SIGTERM, expected_parent=int(main))
        except ParentGoneError:
            os._exit(1)

"""MySpinBot: personal model training and video generation, on a small reliable job spine."""

from .lifeline import die_with_the_server as _die_with_the_server

__version__ = "0.1.0"

_die_with_the_server()

"""MySpinBot: personal model training and video generation, on a small reliable job spine."""

__version__ = "0.1.0"

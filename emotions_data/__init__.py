"""emotions-data: from short-video URLs to a released emotion-recognition dataset and baseline."""

__version__ = "0.1.0"

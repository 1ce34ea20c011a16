"""ferxai: train image classifiers (facial expressions first) and explain them, reproducibly."""

__version__ = "0.1.0"

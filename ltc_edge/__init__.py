"""ltc-edge: train, export and run liquid time-constant networks on small devices."""

__version__ = "0.1.0"

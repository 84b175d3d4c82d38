"""forecast: a command-line time-series forecaster built on JAX.

Importing this package is cheap: JAX, Flax and pandas load only when a command needs them.
"""

__version__ = "0.1.0"

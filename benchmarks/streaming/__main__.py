"""``python -m benchmarks.streaming``: see :mod:`benchmarks.streaming.cli`."""

from benchmarks.streaming.cli import main

main()

"""stormwatch's benchmarks (``make bench*``), kept out of the product package ``pipeline``.

Run from the repository root: ``python -m benchmarks.<bench>``. Fixtures are in
``benchmarks/fixtures``; the product never imports this package.
"""

from pathlib import Path

#: the repository root (the working directory of the processes a bench starts)
ROOT = Path(__file__).resolve().parent.parent
#: the benchmarks' data sets (rca-dev, NAB)
FIXTURES = Path(__file__).resolve().parent / "fixtures"

"""``python -m pipeline`` is the ``stormwatch`` command."""

from pipeline.cli import main

main()

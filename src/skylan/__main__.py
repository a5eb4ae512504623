"""Allows ``python -m skylan``, the same as the ``skylan`` script."""

from skylan.cli.main import main

main()

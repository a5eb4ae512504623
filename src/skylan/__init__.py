"""skylan: encrypted layer-2 virtual private clouds that span providers.

The package is layered (see ``docs/development.md``); imports only point down
the list ``model → tunnel → switch → dataplane → hostnet → agent →
controller → client → cli``, with ``lab`` as test tooling beside them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skylan")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

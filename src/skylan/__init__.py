"""skylan: encrypted layer-2 virtual private clouds that span providers.

The package is layered (see ``docs/development.md``); imports only point down
the list ``model → tunnel → switch → dataplane → hostnet → agent →
controller → client → cli``, with ``lab`` as test tooling beside them.
"""

from __future__ import annotations

from functools import cache

__all__ = ["__version__"]


@cache
def _installed_version() -> str:
    # importlib.metadata costs 40 ms to import: every `skylan` command would pay
    # it, and only --version, the agent and the controller ask
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("skylan")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module 'skylan' has no attribute {name!r}")

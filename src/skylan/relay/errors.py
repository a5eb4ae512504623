"""The relay's start-up failures that a user causes and can fix."""

from __future__ import annotations


class RelayStartError(Exception):
    """A port it must listen on cannot be had (taken, or privileged)."""

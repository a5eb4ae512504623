"""Errors the SDK raises: one type, carrying the API's own message."""

from __future__ import annotations


class SkylanError(Exception):
    """The controller refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

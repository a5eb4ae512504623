"""Typed refusals of the service layer; the API answers each with its status
and ``{"error": message, "detail": {...}}``."""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    status: ClassVar[int] = 400

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class Invalid(ServiceError):
    """The request is well-formed but asks for something impossible."""

    status = 422


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """It clashes with the current state (taken, exists, exhausted)."""

    status = 409


class Refused(ServiceError):
    """The credential offered (a join token, say) does not allow it."""

    status = 401

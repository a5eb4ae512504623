"""The typed Python SDK over the controller's REST API (httpx); the CLI and
users call the same functions."""

from skylan.client.errors import SkylanError
from skylan.client.sdk import Skylan

__all__ = ["Skylan", "SkylanError"]

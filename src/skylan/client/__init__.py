"""The typed Python SDK over the controller's REST API (httpx); the CLI and
users call the same functions.
"""

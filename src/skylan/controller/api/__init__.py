"""HTTP routers of the REST API (``/api/v1``) and their shared dependencies."""

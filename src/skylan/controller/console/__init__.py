"""The web console: server-rendered pages over the controller's own REST API."""

"""The controller's business logic, apart from HTTP: what enrolment, tokens,
ports and IPAM, gateways and cloak rules do to the state. Each operation works
in the caller's database session and raises :mod:`.errors`; the API routers
only translate requests and those errors into HTTP."""

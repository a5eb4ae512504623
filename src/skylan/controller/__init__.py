"""The controller: FastAPI routers, storage (SQLAlchemy 2 + Alembic), auth,
IPAM, netmap computation, the change feed and the web console.
"""

"""Alembic environment: runs on the connection the controller hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from skylan.controller.storage.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the alembic command line: make our own connection
    with create_engine(config.get_main_option("sqlalchemy.url") or "").begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

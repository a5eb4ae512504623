"""Engine creation, sessions and schema migration.

SQLite gets WAL mode, so reads never wait for a write, and a busy timeout; a
write transaction takes the write lock when it begins (``BEGIN IMMEDIATE``), so
it can never fail half-way with SQLITE_BUSY_SNAPSHOT, while a read begins
deferred and takes no lock at all. The schema is always brought to the newest
Alembic revision at start-up, so upgrading skylan upgrades the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from skylan.privatefile import private_file

WRITE = "skylan_write"  # execution option of the connections write sessions use
POOL_TIMEOUT_S = 5.0  # a connection not free by then is a 503, not a 30 s hang


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    pool = {"pool_size": pool_size, "max_overflow": pool_size, "pool_timeout": POOL_TIMEOUT_S}
    if url.startswith("sqlite"):
        _private_sqlite_files(make_url(url).database)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, **pool
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
            # Let SQLAlchemy, not the driver, decide where transactions begin,
            # so SAVEPOINTs (used by IPAM retries) behave.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            writing = conn.get_execution_options().get(WRITE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def _private_sqlite_files(database: str | None) -> None:
    """The database holds token hashes and every node's credential hash: 0600,
    whatever the umask. SQLite gives its -wal and -shm files the database
    file's mode, so making that one first is enough for files yet to come."""
    if not database or database == ":memory:":
        return
    db = Path(database)
    private_file(db)
    for suffix in ("-wal", "-shm", "-journal"):
        side = db.with_name(db.name + suffix)
        if side.exists():
            side.chmod(0o600)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "skylan.controller.storage:migrations")
    url = engine.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    return cfg


def migrate(engine: Engine) -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reading (a deferred transaction on SQLite)."""
    return sessionmaker(engine, expire_on_commit=False)


def write_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for writing (the write lock from the start on SQLite)."""
    return sessionmaker(engine.execution_options(**{WRITE: True}), expire_on_commit=False)

"""The one way a Greenlight store opens its database (SQLAlchemy), whichever engine it serves.

Every store — deploy ledger, incidents, experiments, test durations, schema approvals, live table
sizes — gets the same behaviour from here: a SQLite file's folder is made; SQLite runs in WAL mode
with a busy timeout (many writers and a slow reader share one file without "database is locked");
PostgreSQL and MySQL/MariaDB get connect and statement timeouts; and every failure is a
:class:`DatabaseError` whose message names the store and the URL with its password masked.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from greenlight.errors import UsageError

# How long a SQLite writer waits for another's write lock before failing: long enough for a
# backup or a slow batch, short enough that a caller with a spool notices a stuck store.
SQLITE_BUSY_SECONDS = 10.0
CONNECT_SECONDS = 5.0


class DatabaseError(UsageError):
    """A store's database cannot be used: a bad URL, a server that is down or refuses the
    credentials, or a statement that failed. The message names the store and the URL (password
    masked) and says what to check; the CLI reports it with exit code 2."""


def normalize_url(url: str) -> str:
    """Accept the short schemes people write (``postgres://``, ``mysql://``, ``mariadb://``) and
    map them to the drivers Greenlight ships (psycopg2, PyMySQL)."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://"):]
    for short in ("mysql://", "mariadb://"):
        if url.startswith(short):
            return "mysql+pymysql://" + url[len(short):]
    return url


def masked(url: str | URL) -> str:
    """The URL as it may appear in a message or a log: its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", str(url))


def _password(url: str | URL) -> str | None:
    try:
        return make_url(url).password or None
    except (ArgumentError, ValueError, TypeError):
        found = re.search(r"://[^:@/]*:([^@/]*)@", str(url))
        return found.group(1) if found else None


def reason(exc: BaseException, url: str | URL | None = None) -> str:
    """The first line of a driver error, without the SQL parameters SQLAlchemy appends and
    without the URL's password should a driver echo it."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    line = text[0] if text else type(inner).__name__
    line = f"{type(inner).__name__}: {line}"[:300]
    secret = _password(url) if url is not None else None
    if secret:
        line = line.replace(secret, "***")
    return line


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def open_engine(url: str, *, what: str, connect_timeout: float = CONNECT_SECONDS,
                busy_timeout: float = SQLITE_BUSY_SECONDS,
                statement_timeout_ms: int | None = None, pool_pre_ping: bool = True,
                example: str | None = None) -> Engine:
    """An engine for ``url``; ``what`` names the store in errors ("deploy ledger").

    Nothing is connected yet: a server that is down shows on first use (wrap it with
    :func:`create_tables` or :func:`database_error`). ``example`` is the URL suggested when this
    one is malformed.
    """
    url = normalize_url(url)
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except (ArgumentError, ValueError) as exc:
        raise _bad_url(what, url, exc, example) from exc
    connect_args: dict = {}
    if backend == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot open the {what} at {masked(url)}: cannot create "
                                    f"the folder {path.parent} ({exc.strerror})") from exc
        connect_args["timeout"] = busy_timeout
    elif backend == "postgresql":
        connect_args["connect_timeout"] = max(1, round(connect_timeout))
        if statement_timeout_ms:
            connect_args["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
    elif backend in ("mysql", "mariadb"):
        connect_args["connect_timeout"] = max(1, round(connect_timeout))
        if statement_timeout_ms:
            seconds = max(1, round(statement_timeout_ms / 1000))
            connect_args["read_timeout"] = seconds
            connect_args["write_timeout"] = seconds
    try:
        engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=pool_pre_ping)
    except (SQLAlchemyError, ImportError, ValueError, TypeError) as exc:
        raise _bad_url(what, url, exc, example) from exc
    if backend == "sqlite":
        _tune_sqlite(engine, busy_timeout, wal=sqlite_path(parsed) is not None)
    return engine


def _bad_url(what: str, url: str, exc: BaseException, example: str | None) -> DatabaseError:
    hint = f"; use e.g. {example}" if example else \
        "; use e.g. sqlite:///var/NAME.sqlite or postgresql://user@host/db"
    return DatabaseError(f"{what} URL {masked(url)!r} is not usable: {reason(exc, url)}{hint}")


def _tune_sqlite(engine: Engine, busy_timeout: float, wal: bool) -> None:
    """Per connection: wait for locks instead of failing, and (files only) WAL, so readers never
    block writers and a writer never blocks readers."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # The timeout first: switching to WAL takes a lock that another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()


def database_error(what: str, url: str | URL, exc: BaseException,
                   doing: str = "cannot open", hint: str = "") -> DatabaseError:
    """The error for a failed database operation: store, masked URL, driver reason, what next."""
    advice = hint or "check the URL and that the database server is up"
    return DatabaseError(f"{doing} the {what} at {masked(url)}: {reason(exc, url)}; {advice}")


def create_tables(metadata: MetaData, engine: Engine, *, what: str,
                  tables: Iterable[Table] | None = None, hint: str = "") -> None:
    """Create the store's missing tables (the first real connection: where a wrong password or
    a server that is down shows)."""
    try:
        metadata.create_all(engine, tables=list(tables) if tables is not None else None)
    except SQLAlchemyError as exc:
        raise database_error(what, engine.url, exc, hint=hint) from exc

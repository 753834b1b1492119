"""Alembic revisions as SQL: render a revision range with Alembic's own offline mode and tie
each rendered statement back to the revision file that produced it.

Why offline mode: it is what Alembic itself would send to the server (``alembic upgrade
--sql``), so the review sees the real DDL for the real dialect without a database.  Alembic
prints ``-- Running upgrade A -> B`` before each revision's statements; those comment lines are
how a statement is attributed to ``versions/<rev>_*.py`` (line of ``def upgrade``).  Statements
before the first revision (the ``alembic_version`` table) belong to ``env.py``.
"""
from __future__ import annotations

import io
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from greenlight.errors import GreenlightError, UsageError

DIALECT_URLS = {"mysql": "mysql+pymysql://", "mariadb": "mariadb+pymysql://",
                "postgres": "postgresql://"}
_RUNNING = re.compile(r"^-- Running upgrade (.*?) -> (\S+)\s*$")
_DEF_UPGRADE = re.compile(r"^\s*def\s+upgrade\s*\(")
_DEF_OFFLINE = re.compile(r"\s*def\s+run_migrations_offline\s*\(")


@dataclass
class Revision:
    """Where one revision's statements are reported: its file and the line of ``def upgrade``."""

    revision: str
    path: str
    line: int


@dataclass
class RenderedSQL:
    """The offline SQL of a range and, per line of it, which revision wrote it."""

    sql: str
    script_dir: str
    env_path: str
    env_line: int
    revisions: list[Revision] = field(default_factory=list)
    # (first rendered line, Revision) sorted by line; before the first: env.py
    starts: list[tuple[int, Revision]] = field(default_factory=list)

    def origin(self, rendered_line: int) -> tuple[str, int]:
        """(file, line) of the revision that emitted the statement at ``rendered_line``."""
        found = (self.env_path, self.env_line)
        for start, rev in self.starts:
            if start > rendered_line:
                break
            found = (rev.path, rev.line)
        return found


def _load_config(location: str | os.PathLike, dialect: str):
    """An Alembic Config for a script directory (env.py + versions/) or an alembic.ini, or a
    directory holding an alembic.ini."""
    from alembic.config import Config

    path = Path(location)
    if not path.exists():
        raise UsageError(f"{location}: no such file or directory (give an Alembic script "
                         "directory with env.py and versions/, or an alembic.ini)")
    buffer = io.StringIO()
    if path.is_file():
        config = Config(str(path), stdout=buffer)
        if not config.get_main_option("script_location"):
            raise UsageError(f"{location}: not an Alembic ini file (no script_location in its "
                             "[alembic] section)")
    elif (path / "env.py").is_file():
        config = Config(stdout=buffer)
        config.set_main_option("script_location", str(path.resolve()))
    elif (path / "alembic.ini").is_file():
        return _load_config(path / "alembic.ini", dialect)
    else:
        raise UsageError(f"{location}: not an Alembic environment (no env.py and no "
                         "alembic.ini in it; create one with `alembic init`)")
    if not _usable_url(config.get_main_option("sqlalchemy.url")):
        config.set_main_option("sqlalchemy.url", DIALECT_URLS[dialect])
    return config


def _usable_url(url: str | None) -> bool:
    """The ini's URL is kept when SQLAlchemy knows its dialect (the template's placeholder
    ``driver://user:pass@localhost/dbname`` is not)."""
    if not url:
        return False
    from sqlalchemy.engine import make_url

    try:
        make_url(url).get_dialect()
    except Exception:  # noqa: BLE001 - any failure means "not a usable URL"
        return False
    return True


def _first_line_matching(path: str, pattern: re.Pattern) -> int:
    """Line number of the first line of ``path`` that ``pattern`` matches; 1 when none does
    or the file cannot be read (a finding then points at the file's top)."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 1
    for number, text in enumerate(lines, 1):
        if pattern.match(text):
            return number
    return 1


def _display(path: str, base: Path) -> str:
    """Paths relative to the working directory when under it (stable in reports/approvals)."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(base.resolve()))
    except ValueError:
        return str(resolved)


def _failing_file(exc: BaseException, script_dir: str) -> str:
    """The deepest frame of the traceback inside the script directory, as ``file:line``."""
    root = os.path.realpath(script_dir)
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename).startswith(root + os.sep):
            where = f"{frame.filename}:{frame.lineno}"
    return where


def render_alembic(location: str | os.PathLike, dialect: str,
                   revision_range: str = "base:head") -> RenderedSQL:
    """Run ``alembic upgrade <range> --sql`` in-process and capture the SQL it prints."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if dialect not in DIALECT_URLS:
        raise UsageError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECT_URLS)}")
    config = _load_config(location, dialect)
    try:
        script = ScriptDirectory.from_config(config)
    except CommandError as exc:
        raise UsageError(f"{location}: not an Alembic environment: {exc}") from None
    env_path = os.path.join(script.dir, "env.py")
    if not os.path.isfile(env_path):
        raise UsageError(f"{location}: not an Alembic environment: {env_path} is missing")
    output = io.StringIO()
    config.output_buffer = output
    try:
        command.upgrade(config, revision_range, sql=True)
    except CommandError as exc:
        raise UsageError(f"{location}: alembic cannot render {revision_range!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a revision or env.py raised: say which file
        where = _failing_file(exc, script.dir) or env_path
        raise GreenlightError(
            f"{where}: alembic offline rendering of {revision_range!r} failed: "
            f"{type(exc).__name__}: {exc} (env.py must support offline mode, as the standard "
            "template does, and revisions must not need a live connection)") from None
    cwd = Path.cwd()
    rendered = RenderedSQL(sql=output.getvalue(), script_dir=script.dir,
                           env_path=_display(env_path, cwd),
                           env_line=_first_line_matching(env_path, _DEF_OFFLINE))
    for number, text in enumerate(rendered.sql.splitlines(), 1):
        match = _RUNNING.match(text)
        if not match:
            continue
        rev_id = match.group(2)
        try:
            rev = script.get_revision(rev_id)
            path = rev.path if rev is not None else env_path
        except CommandError:
            path = env_path
        revision = Revision(rev_id, _display(path, cwd),
                            _first_line_matching(path, _DEF_UPGRADE))
        rendered.revisions.append(revision)
        rendered.starts.append((number, revision))
    return rendered


def review_alembic(reviewer, location: str | os.PathLike,
                   revision_range: str = "base:head") -> RenderedSQL:
    """Render the range and review its statements with ``reviewer`` (a ``Reviewer``), each
    attributed to its revision file; all statements are judged as one session, so the
    transaction Alembic wraps them in (Postgres) and tables created earlier count."""
    from schema_review.split import split_statements

    rendered = render_alembic(location, reviewer.settings.dialect, revision_range)
    statements = split_statements(rendered.sql, reviewer.settings.dialect,
                                  reviewer.version.numbers, str(location))
    reviewer.review_statements([(*rendered.origin(s.line), s.sql) for s in statements])
    return rendered

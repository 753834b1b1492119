"""An index of first-parent changes, kept in the ledger's database, so a report reads a file's
history with one query instead of walking git.

``GitHistory.blame_lines`` follows each frame line back through its file's first-parent history
(``git log -p -U0 -w -- FILE``): on a year of history that walk is most of a first report's time
(about 60 ms per file over 27,000 commits). The index holds, for every first-parent commit, its
parents, commit time and the -U0 -w hunks of each file it changed — the same walk done once for
all files. It is filled when deploys are recorded (``index_deploys``: the deploy and ``greenlight
deploys import``), and a report catches up a short missing range itself (``LAZY_LIMIT``
commits); a longer one falls back to git's walk rather than make that report pay for the index.

Commits are keyed by sha alone (a sha names the same commit in every clone), so repositories may
share one database. Invariant: a commit is indexed only with all its first-parent ancestors, so
the newest indexed commit of a chain says the rest is there.
"""
from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone
from typing import Any, Iterable

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from greenlight.db import create_tables
from greenlight.errors import GreenlightError
from greenlight.git.history import CommitInfo, FileChange, GitHistory

LAZY_LIMIT = 2000          # commits a report indexes itself before falling back to git's walk
_CHUNK = 500

metadata = MetaData()

change_commits = Table(
    "gl_change_commits", metadata,
    Column("sha", String(64), primary_key=True),
    Column("parents", Text, nullable=False),                 # space-separated, first first
    Column("committed_at", BigInteger, nullable=False),      # epoch seconds
)

change_files = Table(
    "gl_change_files", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha", String(64), nullable=False),
    Column("path_key", String(40), nullable=False, index=True),   # sha1 of the path
    Column("path", Text, nullable=False),
    Column("hunks", Text, nullable=False),     # "old,old count,new,new count;..." (-U0 -w)
)

change_infos = Table(
    "gl_change_infos", metadata,
    Column("sha", String(64), primary_key=True),
    Column("info", Text, nullable=False),      # JSON: what commits_between says of the commit
)

_ready: set[int] = set()
_ready_lock = threading.Lock()
_catch_up_lock = threading.Lock()


def _path_key(path: str) -> str:
    return hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()


def _hunks_text(hunks: Iterable[tuple[int, int, int, int]]) -> str:
    return ";".join(",".join(str(n) for n in hunk) for hunk in hunks)


def _info_json(info: CommitInfo) -> str:
    return json.dumps({"p": info.parents, "a": info.author, "e": info.email,
                       "t": int(info.authored_at.timestamp()), "m": info.message,
                       "c": info.changed, "r": info.renamed_from, "d": info.deleted,
                       "+": info.added}, separators=(",", ":"))


def _info(sha: str, text: str) -> CommitInfo:
    d = json.loads(text)
    return CommitInfo(sha=sha, parents=d["p"], author=d["a"], email=d["e"],
                      authored_at=datetime.fromtimestamp(d["t"], tz=timezone.utc),
                      message=d["m"], changed={p: [tuple(r) for r in rs]
                                               for p, rs in d["c"].items()},
                      renamed_from=d["r"], deleted=d["d"], added=d["+"])


def _hunks(text: str) -> tuple[tuple[int, int, int, int], ...]:
    return tuple(tuple(int(n) for n in part.split(",")) for part in text.split(";") if part)


class ChangeIndex:
    """The index in one database (the ledger's engine)."""

    def __init__(self, engine: Engine, catch_up: bool = True):
        """``catch_up=False``: a report only reads the index (a sha it lacks is walked in git),
        for a caller that must not write, such as a page's GET."""
        self.engine = engine
        self.may_write = catch_up
        with _ready_lock:
            if id(engine) not in _ready:
                create_tables(metadata, engine, what="change index")
                _ready.add(id(engine))
        self._caught_up: dict[str, bool] = {}

    def missing(self, history: GitHistory, sha: str) -> tuple[int, str | None]:
        """How many first-parent commits up to ``sha`` are not indexed, and the newest indexed
        one (None: none is)."""
        chain = list(history.first_parent_positions(sha))
        with self.engine.connect() as conn:
            for start in range(0, len(chain), _CHUNK):
                part = chain[start:start + _CHUNK]
                found = {s for (s,) in conn.execute(select(change_commits.c.sha)
                                                    .where(change_commits.c.sha.in_(part)))}
                for offset, commit in enumerate(part):
                    if commit in found:
                        return start + offset, commit
        return len(chain), None

    def catch_up(self, history: GitHistory, sha: str, limit: int | None = None) -> int | None:
        """Index the first-parent commits up to ``sha`` that are not yet; returns how many were
        added, or None when more than ``limit`` are missing (nothing is done then)."""
        with _catch_up_lock:
            count, newest = self.missing(history, sha)
            if count == 0:
                return 0
            if limit is not None and count > limit:
                return None
            changes = history.first_parent_changes(sha, stop=newest)
            commits = [{"sha": c.sha, "parents": " ".join(c.parents),
                        "committed_at": int(c.committed_at.timestamp())} for c in changes]
            files = [{"sha": c.sha, "path_key": _path_key(path), "path": path,
                      "hunks": _hunks_text(hunks)}
                     for c in changes for path, hunks in c.files.items()]
            infos = history.commit_infos(newest, sha)     # merged branches' commits too
            try:
                with self.engine.begin() as conn:
                    known = self._stored(conn, [i.sha for i in infos])
                    if commits:
                        conn.execute(change_commits.insert(), commits)
                    if files:
                        conn.execute(change_files.insert(), files)
                    rows = [{"sha": i.sha, "info": _info_json(i)} for i in infos
                            if i.sha not in known]
                    if rows:
                        conn.execute(change_infos.insert(), rows)
            except IntegrityError:       # another process indexed the same range first
                return 0
            return len(commits)

    @staticmethod
    def _stored(conn: Any, shas: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(shas), _CHUNK):
            found.update(conn.execute(select(change_infos.c.sha, change_infos.c.info).where(
                change_infos.c.sha.in_(shas[start:start + _CHUNK]))).all())
        return found

    def commits_between(self, history: GitHistory, previous: str | None, sha: str,
                        limit: int = 500) -> list[CommitInfo] | None:
        """``history.commits_between`` from the index, or None when a commit is missing."""
        try:
            shas = history.range_shas(previous, sha, limit)
            with self.engine.connect() as conn:
                stored = self._stored(conn, shas)
        except (SQLAlchemyError, GreenlightError):
            return None
        if len(stored) < len(set(shas)):
            return None
        return [_info(s, stored[s]) for s in shas]

    def file_history(self, history: GitHistory, sha: str, path: str,
                     since: str | None = None) -> list[FileChange] | None:
        """``history.file_history(sha, path, since)`` from the index (changes whose hunks are
        empty under -w are left out: they move no line), or None when the index cannot answer:
        more than ``LAZY_LIMIT`` commits missing, ``since`` off ``sha``'s first-parent line, or
        the database failing."""
        try:
            if sha not in self._caught_up:
                limit = LAZY_LIMIT if self.may_write else 0
                self._caught_up[sha] = self.catch_up(history, sha, limit) is not None
            if not self._caught_up[sha]:
                return None
            positions = history.first_parent_positions(sha)
            end = len(positions)
            if since is not None:
                if since not in positions:
                    return None
                end = positions[since]
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(change_files.c.sha, change_files.c.hunks, change_commits.c.parents,
                           change_commits.c.committed_at)
                    .join(change_commits, change_commits.c.sha == change_files.c.sha)
                    .where(change_files.c.path_key == _path_key(path),
                           change_files.c.path == path)).all()
        except (SQLAlchemyError, GreenlightError):
            return None
        found = sorted((positions[r.sha], r) for r in rows if positions.get(r.sha, end) < end)
        return [FileChange(sha=r.sha, parents=tuple(r.parents.split()), hunks=_hunks(r.hunks),
                           committed_at=datetime.fromtimestamp(r.committed_at, tz=timezone.utc))
                for _, r in found]


def index_deploys(engine: Engine, repo: Any, shas: Iterable[str]) -> str | None:
    """Bring the index up to each deployed sha (called where deploys are recorded); best
    effort: returns why it could not, None when done. ``repo`` is a path or a GitHistory."""
    try:
        index = ChangeIndex(engine)
        history = repo if isinstance(repo, GitHistory) else GitHistory(repo)
        try:
            covered: set[str] = set()
            for sha in reversed(list(dict.fromkeys(s for s in shas if s))):   # newest last
                if sha in covered or not history.has_commit(sha):
                    continue
                full = history.resolve(sha)
                index.catch_up(history, full)
                covered.update(history.first_parent_positions(full))
        finally:
            if history is not repo:
                history.close()
    except (SQLAlchemyError, GreenlightError) as exc:
        return f"change index not updated: {str(exc).splitlines()[0][:300]}"
    return None

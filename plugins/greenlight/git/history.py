"""History and blame of one repository: what a range of commits changed, who last changed a line.

Read-only questions asked at fixed shas, so every answer is cached for the life of the object.
Blame runs over a whole file with ``-w -M -C`` (whitespace ignored, moved and copied lines followed
to their origin: a block moved as a whole keeps its author, which a one-line ``-L n,n`` blame
misses), honouring ``.git-blame-ignore-revs`` and a list of mechanical commits (formatting,
renames) that blame sees through. Every git call is an argument list through gitpython.
"""
from __future__ import annotations

import codecs
import os
import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import git

from greenlight.errors import GreenlightError, UsageError

_HUNK = re.compile(r"^@@ -(?P<ostart>\d+)(?:,(?P<ocount>\d+))? "
                   r"\+(?P<start>\d+)(?:,(?P<count>\d+))? @@")
_RECORD = "\x1e"
_FIELD = "\x1f"
_FORMAT = _FIELD.join(["%x1e%H", "%P", "%an", "%ae", "%at", "%B"]) + "%x1f"
_ADDED_CAP = 2000            # added lines kept per commit (keyword evidence only)
_SHA = re.compile(r"^[0-9a-fA-F]{4,64}$")
IGNORE_REVS_FILE = ".git-blame-ignore-revs"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class CommitInfo:
    """A commit with the files and the new-side line ranges it changed.

    ``deleted`` holds, per file, the new-side line after which lines were only removed: a change
    that deletes lines has no new-side range, and must not read as a rename.
    """

    sha: str
    parents: list[str]
    author: str
    email: str
    authored_at: datetime
    message: str
    changed: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # path -> [(a, b)]
    renamed_from: dict[str, str] = field(default_factory=dict)               # new path -> old path
    deleted: dict[str, list[int]] = field(default_factory=dict)              # path -> [after line]
    added: list[str] = field(default_factory=list)   # added lines (capped), for keyword evidence

    @property
    def summary(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    def describe_change(self, path: str, cap: int = 6) -> str:
        """``lines 3-5, 9``, ``lines deleted after 12``, ``renamed from x``, or ``file deleted``."""
        ranges = self.changed.get(path) or []
        parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:cap]]
        text = f"lines {', '.join(parts)}" if parts else ""
        if len(ranges) > cap:
            text += f" (+{len(ranges) - cap} more)"
        gone = self.deleted.get(path) or []
        if gone:
            where = ", ".join(str(n) for n in gone[:cap])
            text = f"{text}; " if text else ""
            text += f"lines deleted after line {where}" if any(gone) else "lines deleted"
        if path in self.renamed_from:
            text = f"{text}; " if text else ""
            text += f"renamed from {self.renamed_from[path]}"
        return text or "file deleted"

    def to_dict(self) -> dict[str, Any]:
        return {"sha": self.sha, "parents": self.parents, "author": self.author,
                "email": self.email, "authored_at": _iso(self.authored_at),
                "summary": self.summary, "message": self.message,
                "changed": {p: [list(r) for r in rs] for p, rs in self.changed.items()},
                "deleted": {p: list(v) for p, v in self.deleted.items()},
                "renamed_from": self.renamed_from}


@dataclass(frozen=True)
class BlamedLine:
    """Who last changed one line, as ``git blame -w -M -C`` saw it at ``at_sha``."""

    at_sha: str          # the sha the blame ran at
    path: str            # path at that sha
    line: int
    commit: str          # commit that last changed the line
    orig_path: str       # the path in that commit (differs when the file was renamed or copied)
    orig_line: int
    text: str = ""
    committed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["committed_at"] = _iso(self.committed_at)
        return out


def _unquote(path: str) -> str:
    """git C-quotes unusual paths ("a\\tb"); undo it."""
    if len(path) >= 2 and path[0] == path[-1] == '"':
        raw = codecs.escape_decode(path[1:-1].encode("utf-8"))[0]
        return raw.decode("utf-8", "surrogateescape")
    return path


def parse_log(text: str) -> list[CommitInfo]:
    """Parse ``git log --format=_FORMAT -p -U0 -M`` output into commits with line ranges."""
    commits: list[CommitInfo] = []
    for record in ("\n" + text).split("\n" + _RECORD)[1:]:     # a record starts a line
        sha, parents, author, email, at, rest = record.split(_FIELD, 5)
        message, _, diff = rest.partition(_FIELD)
        info = CommitInfo(sha=sha.strip(), parents=parents.split(), author=author, email=email,
                          authored_at=datetime.fromtimestamp(int(at), tz=timezone.utc),
                          message=message.strip("\n"))
        old_path = current = None
        for line in diff.splitlines():
            head = line[:1]                 # most lines are the hunks' bodies: decide them first
            if head == "-" and not line.startswith("--- "):
                continue
            if head == "+" and not line.startswith("+++ "):
                if current is not None and len(info.added) < _ADDED_CAP:
                    info.added.append(line[1:])
                continue
            if line.startswith("diff --git "):
                old_path = current = None
            elif line.startswith("rename from "):
                old_path = _unquote(line[len("rename from "):])
            elif line.startswith("rename to "):
                current = _unquote(line[len("rename to "):])
                info.changed.setdefault(current, [])
                if old_path:
                    info.renamed_from[current] = old_path
            elif line.startswith("--- "):
                if current is None and line[4:] != "/dev/null":
                    current = _unquote(line[4:])[2:]     # a deleted file keeps its old name
            elif line.startswith("+++ "):
                target = line[4:]
                if target != "/dev/null":
                    current = _unquote(target)[2:]
                if current is not None:
                    info.changed.setdefault(current, [])
            elif line.startswith("@@ ") and current is not None:
                hunk = _HUNK.match(line)
                context = line.split("@@", 2)[-1].strip()
                if context and len(info.added) < _ADDED_CAP:
                    info.added.append(context)      # the enclosing def/class, git's funcname
                if hunk:
                    start = int(hunk["start"])
                    count = int(hunk["count"]) if hunk["count"] is not None else 1
                    if count:
                        info.changed[current].append((start, start + count - 1))
                    else:                           # -U0: a pure deletion after line `start`
                        info.deleted.setdefault(current, []).append(start)
        commits.append(info)
    return commits


def parse_blame(text: str, at_sha: str, path: str, keep_boundary: bool = False,
                boundaries: set[int] | None = None) -> dict[int, BlamedLine]:
    """Parse ``git blame --line-porcelain`` output into final line -> who last changed it.

    Lines attributed to the boundary of a bounded blame (``^since``) are left out: no commit
    after the boundary touched them (``keep_boundary`` keeps them, attributed to the boundary
    commit, at their line in it, and adds their final line numbers to ``boundaries``).
    """
    result: dict[int, BlamedLine] = {}
    header: list[str] | None = None
    orig_path = path
    boundary = False
    committed: datetime | None = None
    for line in text.split("\n"):
        if header is None:
            parts = line.split(" ")
            if len(parts) >= 3 and len(parts[0]) >= 40:
                header = parts
                orig_path = path
                boundary = False
                committed = None
            continue
        if line == "boundary":
            boundary = True
        elif line.startswith("committer-time "):
            committed = datetime.fromtimestamp(int(line.split(" ", 1)[1]), tz=timezone.utc)
        elif line.startswith("filename "):
            orig_path = _unquote(line[len("filename "):])
        elif line.startswith("\t"):
            final = int(header[2])
            if keep_boundary or not boundary:
                result[final] = BlamedLine(at_sha=at_sha, path=path, line=final,
                                           commit=header[0], orig_path=orig_path,
                                           orig_line=int(header[1]), text=line[1:],
                                           committed_at=committed)
                if boundary and boundaries is not None:
                    boundaries.add(final)
            header = None
    return result


@dataclass(frozen=True)
class FileChange:
    """One commit of a file's first-parent history: its -U0 hunks, (old start, old count, new
    start, new count), against the first parent."""

    sha: str
    parents: tuple[str, ...]
    committed_at: datetime
    hunks: tuple[tuple[int, int, int, int], ...]


def parse_file_log(text: str) -> list[FileChange]:
    """Parse ``git log --format=%x1e%H %ct %P -p -U0 -- path`` into changes, newest first."""
    changes = []
    for record in ("\n" + text).split("\n" + _RECORD)[1:]:     # a record starts a line
        head, _, diff = record.partition("\n")
        sha, at, *parents = head.split()
        hunks = []
        for line in diff.splitlines():
            if line.startswith("@@ "):
                hunk = _HUNK.match(line)
                if hunk:
                    hunks.append((int(hunk["ostart"]),
                                  1 if hunk["ocount"] is None else int(hunk["ocount"]),
                                  int(hunk["start"]),
                                  1 if hunk["count"] is None else int(hunk["count"])))
        changes.append(FileChange(sha=sha, parents=tuple(parents), hunks=tuple(hunks),
                                  committed_at=datetime.fromtimestamp(int(at), tz=timezone.utc)))
    return changes


@dataclass(frozen=True)
class CommitChanges:
    """One first-parent commit and the -U0 -w hunks of every file it changed against its first
    parent (what ``file_history`` reads one file at a time), for an index of changes."""

    sha: str
    parents: tuple[str, ...]
    committed_at: datetime
    files: dict[str, tuple[tuple[int, int, int, int], ...]]


def parse_change_log(text: str) -> list[CommitChanges]:
    """Parse ``git log --format=%x1e%H %ct %P -p -U0 -w --no-renames`` of every file into
    commits, newest first. A file whose diff is empty under -w (whitespace only, a mode or a
    binary change) has no entry: it moves no line."""
    commits = []
    for record in ("\n" + text).split("\n" + _RECORD)[1:]:     # a record starts a line
        head, _, diff = record.partition("\n")
        sha, at, *parents = head.split()
        files: dict[str, list[tuple[int, int, int, int]]] = {}
        old = current = None
        in_header = False        # between "diff --git" and the first hunk: "---"/"+++" name it
        for line in diff.splitlines():
            head = line[:1]
            if head == "-" or head == "+":
                if in_header:
                    if line.startswith("--- "):
                        old = None if line[4:] == "/dev/null" else _unquote(line[4:])[2:]
                    elif line.startswith("+++ "):
                        current = old if line[4:] == "/dev/null" else _unquote(line[4:])[2:]
                continue
            if head == "@" and current is not None:
                in_header = False
                hunk = _HUNK.match(line)
                if hunk:
                    files.setdefault(current, []).append((
                        int(hunk["ostart"]), 1 if hunk["ocount"] is None else int(hunk["ocount"]),
                        int(hunk["start"]), 1 if hunk["count"] is None else int(hunk["count"])))
            elif line.startswith("diff --git "):
                old = current = None
                in_header = True
        commits.append(CommitChanges(sha=sha, parents=tuple(parents),
                                     committed_at=datetime.fromtimestamp(int(at), tz=timezone.utc),
                                     files={p: tuple(h) for p, h in files.items()}))
    return commits


def follow_line(change: FileChange, line: int) -> int | None:
    """Where ``line`` of the file after ``change`` was before it; None when ``change`` wrote it."""
    shift = 0
    for _, old_count, new_start, new_count in change.hunks:
        if new_count and new_start <= line < new_start + new_count:
            return None
        if line >= new_start + max(new_count, 1):       # the hunk lies before the line
            shift += old_count - new_count
        else:
            break
    return line + shift


def parse_ignore_revs(text: str) -> list[str]:
    """Shas of a ``.git-blame-ignore-revs`` file: one per line, ``#`` starts a comment."""
    found = []
    for raw in text.splitlines():
        word = raw.split("#", 1)[0].strip()
        if word and _SHA.match(word):
            found.append(word.lower())
    return found


_ATTRIBUTES = """*.py diff=python
*.go diff=golang
*.rb diff=ruby
*.java diff=java
*.rs diff=rust
*.php diff=php
*.c diff=cpp
*.h diff=cpp
*.cc diff=cpp
*.cpp diff=cpp
*.cs diff=csharp
*.js diff=javascript
*.ts diff=javascript
"""
_attributes_file: str | None = None


def _funcname_attributes() -> str:
    """An attributes file naming git's built-in diff drivers, so hunk headers carry the
    enclosing function (``@@ ... @@ def login``) even in a repository without .gitattributes."""
    global _attributes_file
    if _attributes_file is None or not os.path.exists(_attributes_file):
        handle, path = tempfile.mkstemp(prefix="greenlight-attributes-")
        with os.fdopen(handle, "w") as out:
            out.write(_ATTRIBUTES)
        _attributes_file = path
    return _attributes_file


_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_SHARED: dict[tuple[str, str], OrderedDict] = {}
_SHARED_LOCK = threading.Lock()


class _Answers:
    """A cache of one kind of answer (blame, file history...) that lives as long as the process
    for the repository when the question names full shas (its answer never changes: a page view
    opens a new ``GitHistory`` and gets it at once), else as long as the ``GitHistory``."""

    def __init__(self, git_dir: str, kind: str, size: int, revs: Callable[[Any], tuple]):
        with _SHARED_LOCK:
            self._shared = _SHARED.setdefault((git_dir, kind), OrderedDict())
        self._size, self._revs = size, revs
        self._local: dict = {}

    def _home(self, key: Any) -> dict:
        fixed = all(r is None or _FULL_SHA.match(r) for r in self._revs(key))
        return self._shared if fixed else self._local

    def __contains__(self, key: Any) -> bool:
        return key in self._home(key)

    def __getitem__(self, key: Any) -> Any:
        home = self._home(key)
        with _SHARED_LOCK:
            value = home[key]
            if home is self._shared:
                home.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        home = self._home(key)
        with _SHARED_LOCK:
            home[key] = value
            if home is self._shared:
                home.move_to_end(key)
                while len(home) > self._size:
                    home.popitem(last=False)


def forget_shared_answers() -> None:
    """Empty the process-wide caches (benchmarks time a report with nothing cached)."""
    with _SHARED_LOCK:
        for answers in _SHARED.values():
            answers.clear()


@dataclass(frozen=True)
class RefPoint:
    """A commit of a branch's first-parent line or a tag, with the time it stands for."""

    sha: str
    previous: str | None
    at: datetime
    name: str = ""


class GitHistory:
    """Read-only questions about one repository, asked at fixed shas and cached.

    A bare repository without a ``config`` file (a mirror copied by hand) is opened too: git is
    pointed at the directory with ``GIT_DIR`` instead of guessing a work tree around it.
    """

    def __init__(self, path: str | Path, ignore_revs: Iterable[str] = (),
                 changes: Any = None):
        path = Path(path)
        try:
            self.repo = git.Repo(str(path))
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise UsageError(f"{path}: not a git repository; pass --repo DIR of the deployed "
                             f"repository (or set [repository] url)") from exc
        self.path = path
        self.repo.git.update_environment(GIT_DIR=str(Path(self.repo.git_dir).resolve()))
        self._git = self.repo.git
        self._extra_ignore = [r.strip().lower() for r in ignore_revs if r.strip()]
        # Bounded per repository (least recently used first out): a tree listing and a
        # whole-file blame can be large, file histories and ancestry answers are small.
        where = str(Path(self.repo.git_dir).resolve())
        self._files = _Answers(where, "files", 8, lambda key: (key,))
        self._blames = _Answers(where, "blames", 128, lambda key: (key[0], key[2], key[5]))
        self._histories = _Answers(where, "histories", 2048, lambda key: (key[0], key[2]))
        self._ranges = _Answers(where, "ranges", 256, lambda key: key[:2])
        self._ancestry = _Answers(where, "ancestry", 65536, lambda key: key)
        self._chains = _Answers(where, "chains", 8, lambda key: (key,))
        # An index of first-parent changes (``greenlight.incidents.change_index``): its
        # ``file_history(history, sha, path, since)`` answers from a database, or None.
        self.changes = changes
        self._lines: list[dict[str, int]] = []      # first-parent lines asked of this object
        self._known: dict[str, bool] = {}
        self._ignored: dict[str, list[str]] = {}

    def close(self) -> None:
        self.repo.close()

    def __enter__(self) -> GitHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, *args: str, what: str) -> str:
        try:
            return self._git.execute(["git", "-c", "core.quotePath=false", *args],
                                     stdout_as_string=True, strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            raise GreenlightError(f"{self.path}: git {what} failed: "
                                  f"{str(exc.stderr).strip()[:500]}") from exc

    def resolve(self, rev: str) -> str:
        try:
            return self._git.execute(["git", "rev-parse", "--verify", "--quiet",
                                      f"{rev}^{{commit}}"]).strip()
        except git.GitCommandError as exc:
            raise UsageError(f"{self.path}: unknown commit {rev!r} (is the repository fetched "
                             f"up to the deployed sha?)") from exc

    def has_commit(self, sha: str) -> bool:
        """Is ``sha`` a commit here?"""
        if not sha:
            return False
        if sha not in self._known:
            try:
                self.resolve(sha)
                self._known[sha] = True
            except UsageError:
                self._known[sha] = False
        return self._known[sha]

    def files_at(self, sha: str) -> list[str]:
        """Every file path of the tree at ``sha`` (to map stack frames onto)."""
        if sha not in self._files:
            out = self._run("ls-tree", "-r", "--name-only", "-z", sha, what=f"ls-tree {sha[:12]}")
            self._files[sha] = [p for p in out.split("\0") if p]
        return self._files[sha]

    def file_at(self, sha: str, path: str) -> str | None:
        """The text of ``path`` at ``sha``, None when it is not there."""
        try:
            return self._git.execute(["git", "show", f"{sha}:{path}"], stdout_as_string=True,
                                     strip_newline_in_stdout=False)
        except git.GitCommandError:
            return None

    def commits_between(self, previous: str | None, sha: str, limit: int = 500,
                        ) -> list[CommitInfo]:
        """Commits a deploy shipped (``previous..sha``), newest first, with their changed lines.

        With no previous sha (first deploy) only ``sha`` itself is taken: shipping the whole
        history is not news. Merge commits are listed; their lines come from blame, not diffs.
        """
        key = (previous, sha, limit)
        if key not in self._ranges and self.changes is not None:
            stored = self.changes.commits_between(self, previous, sha, limit)
            if stored is not None:
                self._ranges[key] = stored
        if key not in self._ranges:
            spec = [f"{previous}..{sha}"] if previous else ["-1", sha]
            out = self._run("-c", f"core.attributesFile={_funcname_attributes()}",
                            "log", f"--format={_FORMAT}", "-p", "-U0", "-M", "--no-color",
                            "--no-ext-diff", "--diff-merges=off", f"--max-count={limit}",
                            *spec, "--", what=f"log {' '.join(spec)}")
            self._ranges[key] = parse_log(out)
        return self._ranges[key]

    def commit(self, sha: str) -> CommitInfo:
        """One commit with its changed lines (against its first parent)."""
        found = self.commits_between(None, sha)
        if not found:
            raise UsageError(f"{self.path}: unknown commit {sha!r}")
        return found[0]

    def ignore_revs(self, sha: str) -> list[str]:
        """Commits blame sees through at ``sha``: the tree's ``.git-blame-ignore-revs`` plus the
        configured mechanical commits, each resolved (git refuses an unknown one)."""
        if sha not in self._ignored:
            listed = parse_ignore_revs(self.file_at(sha, IGNORE_REVS_FILE) or "")
            resolved = []
            for rev in dict.fromkeys(listed + self._extra_ignore):
                if self.has_commit(rev):
                    resolved.append(self.resolve(rev))
            self._ignored[sha] = resolved
        return self._ignored[sha]

    def blame_file(self, sha: str, path: str, since: str | None = None,
                   ) -> dict[int, BlamedLine]:
        """Who last changed every line of ``path`` as of ``sha`` (empty if no such file), by
        ``git blame -w -M -C`` of the whole file.

        With ``since`` (a commit), lines already there at ``since`` are left out and git stops
        walking history there: on a long history that is most of a whole-file blame's time.
        """
        return self._blame(sha, path, since, copies=True)[0]

    def _blame(self, sha: str, path: str, since: str | None = None, *, copies: bool,
               only_commit: bool = False, exclude: str | None = None,
               ignore: tuple[str, ...] | None = None,
               ) -> tuple[dict[int, BlamedLine], set[int]]:
        """One ``git blame --line-porcelain -w -M [-C]`` of the whole file, cached, and the
        lines it left at a boundary.

        ``only_commit`` blames ``sha`` against its parents alone (``sha ^sha^@``), ``exclude``
        stops at that commit too (``^exclude``, a merge's first parent): lines ``sha`` (or the
        branch it merged) did not write are kept, attributed to the boundary commit they came
        from, at their path and line there (another file when they were moved or copied).
        """
        ignore = tuple(self.ignore_revs(sha) if ignore is None else ignore)
        key = (sha, path, since, copies, only_commit, exclude, ignore)
        if key not in self._blames:
            flags = [arg for rev in ignore for arg in ("--ignore-rev", rev)]
            bound = ([f"^{sha}^@"] if only_commit else []) + (
                [f"^{exclude}"] if exclude else []) + ([f"^{since}"] if since else [])
            keep = only_commit or bool(exclude)
            try:
                out = self._git.execute(
                    ["git", "-c", "core.quotePath=false", "blame", "--line-porcelain", "--root",
                     "-w", "-M", *(["-C"] if copies else []), *flags, sha, *bound, "--", path],
                    stdout_as_string=True, strip_newline_in_stdout=False)
            except git.GitCommandError as exc:
                if "no such path" in str(exc.stderr):
                    self._blames[key] = ({}, set())
                    return {}, set()
                raise GreenlightError(f"{self.path}: git blame {path} at {sha[:12]} failed: "
                                      f"{str(exc.stderr).strip()[:500]}") from exc
            boundaries: set[int] = set()
            self._blames[key] = (parse_blame(out, sha, path, keep_boundary=keep,
                                             boundaries=boundaries), boundaries)
        return self._blames[key]

    def file_history(self, sha: str, path: str, since: str | None = None) -> list[FileChange]:
        """The first-parent commits that changed ``path`` up to ``sha`` (after ``since``),
        newest first, with their -U0 hunks ignoring whitespace; a merge's hunks are against
        its first parent. One ``git log`` whose walk git's changed-path Bloom filters make
        cheap, where ``blame`` with ``-C`` reads every commit's tree."""
        key = (sha, path, since)
        if key not in self._histories and self.changes is not None:
            indexed = self.changes.file_history(self, sha, path, since)
            if indexed is not None:
                self._histories[key] = indexed
        if key not in self._histories:
            bound = [f"^{since}"] if since else []
            out = self._run("log", "--first-parent", "--diff-merges=first-parent", "-p", "-U0",
                            "-w", "--no-renames", "--no-color", "--no-ext-diff",
                            "--format=%x1e%H %ct %P", sha, *bound, "--", path,
                            what=f"log {path} at {sha[:12]}")
            self._histories[key] = parse_file_log(out)
        return self._histories[key]

    def first_parent_chain(self, sha: str) -> list[str]:
        """``sha`` and its first-parent ancestors, newest first (one ``git rev-list``)."""
        return list(self.first_parent_positions(sha))

    def first_parent_positions(self, sha: str) -> dict[str, int]:
        """``sha`` and its first-parent ancestors -> their distance from ``sha``. Once asked,
        ``is_ancestor`` answers for two commits of this line without running git."""
        if sha not in self._chains:
            out = self._run("rev-list", "--first-parent", sha, "--",
                            what=f"rev-list --first-parent {sha[:12]}")
            self._chains[sha] = {c: i for i, c in enumerate(out.split())}
        chain = self._chains[sha]
        if not any(known is chain for known in self._lines):
            self._lines.append(chain)
        return chain

    def range_shas(self, previous: str | None, sha: str, limit: int = 500) -> list[str]:
        """The shas ``commits_between`` lists, in its order (one ``git rev-list``)."""
        spec = [f"{previous}..{sha}"] if previous else ["-1", sha]
        return self._run("rev-list", f"--max-count={limit}", *spec, "--",
                         what=f"rev-list {' '.join(spec)}").split()

    def commit_infos(self, previous: str | None, sha: str) -> list[CommitInfo]:
        """Every commit of ``previous..sha`` (all of ``sha``'s history without ``previous``),
        as ``commits_between`` describes them, for an index of changes."""
        spec = [f"{previous}..{sha}"] if previous else [sha]
        out = self._run("-c", f"core.attributesFile={_funcname_attributes()}",
                        "log", f"--format={_FORMAT}", "-p", "-U0", "-M", "--no-color",
                        "--no-ext-diff", "--diff-merges=off", *spec, "--",
                        what=f"log {' '.join(spec)}")
        return parse_log(out)

    def first_parent_changes(self, sha: str, stop: str | None = None) -> list[CommitChanges]:
        """The first-parent commits up to ``sha`` after ``stop`` (all of them without it),
        newest first, each with the -U0 -w hunks of every file it changed: the flags of
        ``file_history``, all files in one walk, for an index of changes."""
        bound = [f"^{stop}"] if stop else []
        out = self._run("log", "--first-parent", "--diff-merges=first-parent", "-p", "-U0",
                        "-w", "--no-renames", "--no-color", "--no-ext-diff",
                        "--format=%x1e%H %ct %P", sha, *bound, "--",
                        what=f"log --first-parent {sha[:12]}")
        return parse_change_log(out)

    def blame_lines(self, sha: str, path: str, lines: Iterable[int],
                    since: str | None = None) -> dict[int, BlamedLine]:
        """Who last changed each of ``lines`` of ``path`` at ``sha`` (lines past the end are
        dropped; with ``since``, lines already there at ``since`` too): the answer of
        ``git blame -w -M -C`` of the whole file, at a fraction of its cost on a long history.

        A whole-file ``-C`` blame makes git read every commit's tree (the changed-path Bloom
        filters only help when no other file is searched): seconds per file over 30,000
        commits. Instead each line is followed back through the file's first-parent history
        (``file_history``) to the commit that changed it; a merge hands it to the branch it
        merged (``git blame`` of the merge down to its first parent: a short walk); and that
        commit is asked alone, with ``-M -C`` against its parents, whether it wrote the line
        or moved or copied it from another place — then the line is followed from there.
        """
        text = self.file_at(sha, path)
        if text is None:
            return {}
        source = text.splitlines()
        ignore = tuple(self.ignore_revs(sha))
        found = {}
        for n in lines:
            if not 1 <= n <= len(source):
                continue
            origin = self._follow(sha, path, n, since, ignore)
            if origin is not None:
                found[n] = BlamedLine(at_sha=sha, path=path, line=n, commit=origin.commit,
                                      orig_path=origin.orig_path, orig_line=origin.orig_line,
                                      text=source[n - 1], committed_at=origin.committed_at)
        return found

    def _follow(self, sha: str, path: str, line: int, since: str | None,
                ignore: tuple[str, ...], hops: int = 8) -> BlamedLine | None:
        """The commit that wrote ``path:line`` as of ``sha`` (None: before ``since``)."""
        for change in self.file_history(sha, path, since):
            before = follow_line(change, line)
            if before is not None:
                line = before
                continue
            if len(change.parents) > 1:          # a merge: ask blame over the merged branch
                hits, edge = self._blame(change.sha, path, since, copies=False,
                                         exclude=change.parents[0], ignore=ignore)
                hit = hits.get(line)
                if hit is None:
                    return None
                if line in edge:     # from the first parent's history, or before `since`
                    if hops <= 0 or (since and self.is_ancestor(hit.commit, since)):
                        return None
                    return self._follow(hit.commit, hit.orig_path, hit.orig_line, since,
                                        ignore, hops - 1)
            else:
                hit = BlamedLine(at_sha=change.sha, path=path, line=line, commit=change.sha,
                                 orig_path=path, orig_line=line,
                                 committed_at=change.committed_at)
            # Did that commit write the line, or move or copy it (-M -C) from elsewhere?
            hits, edge = self._blame(hit.commit, hit.orig_path, copies=True, only_commit=True,
                                     ignore=ignore)
            check = hits.get(hit.orig_line)
            if check is None or check.commit == hit.commit or hops <= 0:
                return hit
            return self._follow(check.commit, check.orig_path, check.orig_line, since, ignore,
                                hops - 1)
        return None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is reachable from ``descendant`` (a commit is its own)."""
        key = (ancestor, descendant)
        if key not in self._ancestry:
            line = next((chain for chain in self._lines
                         if ancestor in chain and descendant in chain), None)
            if ancestor == descendant:
                self._ancestry[key] = True
            elif line is not None:      # one first-parent line: the older is the ancestor
                self._ancestry[key] = line[ancestor] > line[descendant]
            else:
                status = self._git.execute(
                    ["git", "merge-base", "--is-ancestor", ancestor, descendant],
                    with_extended_output=True, with_exceptions=False)[0]
                self._ancestry[key] = status == 0
        return self._ancestry[key]

    def first_parent_line(self, branch: str, since: datetime | None = None,
                          ) -> list[RefPoint]:
        """The first-parent commits of ``branch``, oldest first, at their commit time."""
        tip = self.resolve(branch)
        args = ["log", "--first-parent", "--format=%H %P %ct", "--reverse"]
        if since is not None:
            args.append(f"--since={int(since.timestamp())}")
        out = self._run(*args, tip, "--", what=f"log --first-parent {branch}")
        points = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            sha, parents, at = parts[0], parts[1:-1], parts[-1]
            points.append(RefPoint(sha=sha, previous=parents[0] if parents else None,
                                   at=datetime.fromtimestamp(int(at), tz=timezone.utc)))
        return points

    def tags(self, pattern: str) -> list[RefPoint]:
        """Tags matching ``pattern`` (a glob such as ``v*``), oldest first, at their tag time
        (the tagger date of an annotated tag, the commit time of a lightweight one); each
        ``previous`` is the tag before it."""
        fmt = "%(refname:short)%00%(objectname)%00%(*objectname)%00%(taggerdate:unix)%00" \
              "%(*committerdate:unix)%00%(committerdate:unix)"
        out = self._run("for-each-ref", f"--format={fmt}", f"refs/tags/{pattern}",
                        what=f"for-each-ref refs/tags/{pattern}")
        found = []
        for line in out.splitlines():
            name, obj, peeled, tagged, peeled_time, own_time = (line.split("\0") + [""] * 6)[:6]
            sha = peeled or obj
            when = tagged or peeled_time or own_time
            if not sha or not when.strip():
                continue
            found.append((datetime.fromtimestamp(int(when), tz=timezone.utc), name, sha))
        found.sort()
        points, previous = [], None
        for when, name, sha in found:
            points.append(RefPoint(sha=sha, previous=previous, at=when, name=name))
            previous = sha
        return points

    # The page's small git viewer reads these (commit, range, blame as text/rows).
    def show_text(self, sha: str) -> str:
        return self._run("show", "--no-ext-diff", "--no-textconv", "--stat", "--patch", "-M",
                         "--format=fuller", sha, "--", what=f"show {sha[:12]}")

    def compare_text(self, base: str, sha: str, limit: int = 200) -> str:
        return self._run("log", "--no-ext-diff", "--no-textconv", "-n", str(limit), "--stat",
                         "--patch", "-M", "--format=fuller", f"{base}..{sha}", "--",
                         what=f"log {base[:12]}..{sha[:12]}")

"""The only module of the incident engine that runs git (through gitpython, argument lists only).

Big histories stay cheap: a deploy range is one ``git log`` with zero-context hunks, and blame
runs once per (deployed sha, file) with one ``-L`` per failing line, so git stops walking as soon
as those lines are attributed. Results at a fixed sha never change, so they are cached.
"""
from __future__ import annotations

import codecs
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import git

from greenlight.errors import GreenlightError, UsageError
from greenlight.incidents.model import BlamedLine, CommitInfo

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<count>\d+))? @@")
_RECORD = "\x1e"
_FIELD = "\x1f"
_FORMAT = _FIELD.join(["%x1e%H", "%P", "%an", "%ae", "%at", "%B"]) + "%x1f"
_ADDED_CAP = 2000            # added lines kept per commit (keyword evidence only)
_LINES_ONLY = re.compile(r"has only (\d+) lines?")


def _unquote(path: str) -> str:
    """git C-quotes unusual paths ("a\\tb"); undo it."""
    if len(path) >= 2 and path[0] == path[-1] == '"':
        raw = codecs.escape_decode(path[1:-1].encode("utf-8"))[0]
        return raw.decode("utf-8", "surrogateescape")
    return path


def parse_log(text: str) -> list[CommitInfo]:
    """Parse the output of ``git log --format=_FORMAT -p -U0 -M`` into commits with line ranges."""
    commits: list[CommitInfo] = []
    for record in text.split(_RECORD)[1:]:
        sha, parents, author, email, at, rest = record.split(_FIELD, 5)
        message, _, diff = rest.partition(_FIELD)
        info = CommitInfo(sha=sha.strip(), parents=parents.split(), author=author, email=email,
                          authored_at=datetime.fromtimestamp(int(at), tz=timezone.utc),
                          message=message.strip("\n"))
        old_path = current = None
        for line in diff.splitlines():
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
            elif line.startswith("+") and current is not None and len(info.added) < _ADDED_CAP:
                info.added.append(line[1:])
        commits.append(info)
    return commits


def parse_blame(text: str, at_sha: str, path: str) -> dict[int, BlamedLine]:
    """Parse ``git blame --line-porcelain`` output into final line -> who last changed it.

    Lines attributed to the boundary of a bounded blame (changed before the window) are left
    out: no commit of the window touched them.
    """
    result: dict[int, BlamedLine] = {}
    header: list[str] | None = None
    orig_path = path
    boundary = False
    for line in text.split("\n"):
        if header is None:
            parts = line.split(" ")
            if len(parts) >= 3 and len(parts[0]) >= 40:
                header = parts
                orig_path = path
                boundary = False
            continue
        if line == "boundary":
            boundary = True
        elif line.startswith("filename "):
            orig_path = _unquote(line[len("filename "):])
        elif line.startswith("\t"):
            final = int(header[2])
            if boundary:
                header = None
                continue
            result[final] = BlamedLine(at_sha=at_sha, path=path, line=final, commit=header[0],
                                       orig_path=orig_path, orig_line=int(header[1]),
                                       text=line[1:])
            header = None
    return result


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


class GitHistory:
    """Read-only questions about one repository, asked at fixed shas and cached."""

    def __init__(self, path: str | Path):
        try:
            self.repo = git.Repo(str(path))
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise UsageError(f"{path}: not a git repository; pass --repo DIR of the deployed "
                             f"repository") from exc
        self.path = Path(path)
        self._files: dict[str, list[str]] = {}
        self._blame: dict[tuple[str, str, int, str | None], BlamedLine | None] = {}
        self._ranges: dict[tuple[str | None, str], list[CommitInfo]] = {}
        self._git = self.repo.git

    def resolve(self, rev: str) -> str:
        try:
            return self._git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}")
        except git.GitCommandError as exc:
            raise UsageError(f"{self.path}: unknown commit {rev!r} (is the repository fetched "
                             f"up to the deployed sha?)") from exc

    def has_commit(self, sha: str) -> bool:
        """Is ``sha`` a commit here? Asked of one long-lived ``git cat-file`` (no fork per sha)."""
        if not sha or any(c not in "0123456789abcdefABCDEF" for c in sha):
            try:
                self.resolve(sha)
                return True
            except UsageError:
                return False
        try:
            _, kind, _ = self._git.get_object_header(sha)
        except ValueError:
            return False
        return (kind.decode() if isinstance(kind, bytes) else kind) == "commit"

    def files_at(self, sha: str) -> list[str]:
        """Every file path of the tree at ``sha`` (to map stack frames onto)."""
        if sha not in self._files:
            out = self._git.ls_tree("-r", "--name-only", "-z", sha)
            self._files[sha] = [p for p in out.split("\0") if p]
        return self._files[sha]

    def commits_between(self, previous: str | None, sha: str, limit: int = 500) -> list[CommitInfo]:
        """Commits a deploy shipped (``previous..sha``), newest first, with their changed lines.

        With no previous sha (first deploy) only ``sha`` itself is taken: shipping the whole
        history is not news. Merge commits are listed; their lines come from blame, not diffs.
        """
        key = (previous, sha)
        if key not in self._ranges:
            spec = [f"{previous}..{sha}"] if previous else ["-1", sha]
            try:
                out = self.repo.git.execute(
                    ["git", "-c", "core.quotePath=false",
                     "-c", f"core.attributesFile={_funcname_attributes()}",
                     "log", f"--format={_FORMAT}", "-p",
                     "-U0", "-M", "--no-color", "--no-ext-diff", "--diff-merges=off",
                     f"--max-count={limit}", *spec, "--"],
                    stdout_as_string=True, strip_newline_in_stdout=False)
            except git.GitCommandError as exc:
                raise GreenlightError(f"{self.path}: git log {' '.join(spec)} failed: "
                                      f"{exc.stderr.strip()}; is the deployed sha in this "
                                      f"repository?") from exc
            self._ranges[key] = parse_log(out)
        return self._ranges[key]

    def blame_lines(self, sha: str, path: str, lines: list[int],
                    since: str | None = None) -> dict[int, BlamedLine]:
        """Who last changed each of ``lines`` of ``path`` as of ``sha``, following renames/copies.

        One ``git blame -M -C`` per file with one ``-L n,n`` per line; lines past the end of the
        file (a trace from other code) are dropped rather than failing the report. With
        ``since`` (the sha live before the window) blame stops there: lines older than the window
        are nobody's in it, and git need not walk the rest of a long history.
        """
        wanted = sorted({n for n in lines
                         if n > 0 and (sha, path, n, since) not in self._blame})
        if wanted:
            found = self._run_blame(sha, path, wanted, since)
            for n in wanted:
                self._blame[(sha, path, n, since)] = found.get(n)
        out = {}
        for n in lines:
            hit = self._blame.get((sha, path, n, since))
            if hit is not None:
                out[n] = hit
        return out

    def _run_blame(self, sha: str, path: str, lines: list[int],
                   since: str | None = None) -> dict[int, BlamedLine]:
        ranges: list[str] = []
        for n in lines:
            ranges += ["-L", f"{n},{n}"]
        cmd = ["git", "-c", "core.quotePath=false", "blame", "--line-porcelain", "--root",
               "-M", "-C",
               *ranges, sha, *([f"^{since}"] if since else []), "--", path]
        try:
            out = self.repo.git.execute(cmd, stdout_as_string=True,
                                        strip_newline_in_stdout=False)
        except git.GitCommandError as exc:
            too_long = _LINES_ONLY.search(str(exc.stderr))
            if too_long:
                limit = int(too_long.group(1))
                kept = [n for n in lines if n <= limit]
                return self._run_blame(sha, path, kept, since) if kept else {}
            if "no such path" in str(exc.stderr):
                return {}
            raise GreenlightError(f"{self.path}: git blame {path} at {sha[:12]} failed: "
                                  f"{str(exc.stderr).strip()}") from exc
        return parse_blame(out, sha, path)


def is_ancestor(history: GitHistory, ancestor: str, descendant: str) -> bool:
    """True when ``ancestor`` is reachable from ``descendant`` (a commit is its own ancestor)."""
    key = (ancestor, descendant)
    cache = history.__dict__.setdefault("_ancestry", {})
    if key not in cache:
        status = history.repo.git.execute(
            ["git", "merge-base", "--is-ancestor", ancestor, descendant],
            with_extended_output=True, with_exceptions=False)[0]
        cache[key] = status == 0
    return cache[key]

"""``greenlight schema check|approve|reject|pending``: review migrations, decide on findings.

check exits 0 when every statement is safe or approved, 1 when one needs review, 2 on bad input
(a missing path, a directory without migrations, a binary file, an --output directory that does
not exist, a database URL of another dialect): a CI job must not pass because it reviewed nothing.
"""
from __future__ import annotations

import argparse
import errno
import gc
import json
import os
import sys
from pathlib import Path

from greenlight.errors import UsageError

DEFAULT_APPROVALS = "var/schema-approvals.sqlite"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("schema", help="review SQL migrations; approve findings")
    verbs = parser.add_subparsers(dest="schema_verb", metavar="ACTION",
                                  parser_class=type(parser))
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])

    check = verbs.add_parser("check", help="review migration files (exit 1: needs review)")
    check.add_argument("paths", nargs="*", metavar="PATH",
                       help="migration files or directories (*.sql, in name order)")
    check.add_argument("--alembic", metavar="DIR", help="Alembic script directory (env.py + "
                       "versions/) or alembic.ini: its revisions are rendered to SQL with "
                       "Alembic's offline mode and reviewed (after any PATHs)")
    check.add_argument("--revision-range", default="base:head", metavar="FROM:TO",
                       help="with --alembic: the revisions to render (default base:head)")
    check.add_argument("--dialect", required=True, choices=["mysql", "mariadb", "postgres"])
    check.add_argument("--server-version", help="e.g. 8.0.35, 10.11, 15 (read live with "
                       "--db-url)")
    source = check.add_mutually_exclusive_group()
    source.add_argument("--sizes", help='sizes file {"tables": {"t": {"rows": N, "bytes": N}}}')
    source.add_argument("--db-url", help="SQLAlchemy URL of the target database (sizes, "
                        "columns, version read live)")
    check.add_argument("--large-rows", type=int, default=1_000_000)
    check.add_argument("--large-bytes", type=int, default=1 << 30)
    check.add_argument("--unknown-size", choices=["review", "safe"], default="review",
                       help="verdict for size-dependent changes on tables of unknown size")
    check.add_argument("--format", choices=["text", "json", "sarif", "markdown"],
                       default="text")
    check.add_argument("--output", help="also write the report (in --format) to this file")
    check.add_argument("--approvals", help="approvals database (SQLAlchemy URL or SQLite path): "
                       "approved statements pass; flagged ones are recorded as pending")
    check.add_argument("--changed-since", metavar="BASE",
                       help="only files changed in BASE..HEAD (git diff) under the PATHs")
    check.add_argument("--head", default="HEAD", help="head commit for --changed-since")
    check.add_argument("--repo", help="repository name recorded with pending findings")
    check.add_argument("--commit", help="commit recorded with pending findings")
    check.add_argument("--author", help="author recorded with pending findings")
    check.add_argument("--show-safe", action="store_true", help="text format: list safe ones")
    check.set_defaults(func=run_check)

    for verb, helptext in (("approve", "approve a flagged statement"),
                           ("reject", "reject a flagged statement")):
        sub = verbs.add_parser(verb, help=helptext)
        sub.add_argument("key", help="finding key (see `greenlight schema pending`)")
        sub.add_argument("--user", default=os.environ.get("USER", ""),
                         help="reviewer name (default $USER)")
        sub.add_argument("--comment", default="")
        sub.add_argument("--approvals", default=None, help=f"default {DEFAULT_APPROVALS}")
        sub.set_defaults(func=run_decide, decision=verb)

    pending = verbs.add_parser("pending", help="list flagged statements awaiting approval")
    pending.add_argument("--approvals", default=None, help=f"default {DEFAULT_APPROVALS}")
    pending.add_argument("--all", action="store_true", help="include approved ones")
    pending.add_argument("--format", choices=["text", "json"], default="text")
    pending.set_defaults(func=run_pending)


def _approvals_url(value: str | None) -> str:
    return value or os.environ.get("GREENLIGHT_SCHEMA_APPROVALS") or DEFAULT_APPROVALS


def _collect_files(paths: list[str], changed_since: str | None, head: str
                   ) -> list[tuple[str, Path]]:
    """(display path, file) pairs in review order."""
    if changed_since is not None:
        from schema_review.changes import changed_migrations, repo_root

        root = repo_root(Path.cwd())
        dirs = [os.path.relpath(Path(p).resolve(), root) for p in paths]
        changed = changed_migrations(root, changed_since or None, head, dirs)
        return [(rel, root / rel) for rel in changed]
    files: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _sql_files(path)
            if not found:
                raise UsageError(f"no migration files found under {raw} (looked for *.sql): "
                                 "give the migrations directory")
            files.extend((str(p), p) for p in found)
        elif path.is_file():
            files.append((raw, path))
        else:
            raise UsageError(f"{raw}: no such file or directory (give migration files or a "
                             "migrations directory)")
    return files


def _sql_files(root: Path) -> list[Path]:
    """``sorted(root.rglob("*.sql"))`` with one ``scandir`` per directory (pathlib's rglob
    scans each directory twice): every entry named ``*.sql``, in subdirectories too, symlinked
    directories not entered, unreadable ones skipped."""
    ignore_case = os.name == "nt"  # pathlib's Windows flavour matches without case
    found: list[Path] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries_it:
                entries = list(entries_it)
        except PermissionError:
            continue
        for entry in entries:
            name = entry.name
            if (name.lower() if ignore_case else name).endswith(".sql"):
                found.append(folder / name)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as exc:
                if getattr(exc, "errno", None) not in _IGNORED_ERRNOS:
                    raise
                is_dir = False
            if is_dir:
                pending.append(folder / name)
    return sorted(found)


_IGNORED_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)  # as pathlib's


def _read(path: Path) -> bytes:
    """The file's bytes through os.open/os.read (no io buffer objects per file)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


_URL_BACKENDS = {"postgres": ("postgresql",), "mysql": ("mysql", "mariadb"),
                 "mariadb": ("mysql", "mariadb")}


def _check_db_url(url: str, dialect: str) -> None:
    """A URL of another database kind would be read with the wrong catalog queries."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    scheme = {"postgres": "postgresql", "pg": "postgresql"}.get(scheme, scheme)
    if scheme not in _URL_BACKENDS[dialect]:
        wanted = " or ".join(f"{b}://" for b in _URL_BACKENDS[dialect])
        raise UsageError(f"--db-url is a {scheme or 'not a'} URL ({scheme or url[:20]}://…) but "
                         f"--dialect is {dialect}: give a {wanted} URL or the matching --dialect")


def _check_output(output: str) -> None:
    parent = Path(output).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--output {output}: directory {parent} does not exist")


_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def _sql_text(shown: str, data: bytes) -> str:
    """The file as text; a binary file (NUL bytes, or mostly control characters) is refused
    rather than reviewed as garbage statements."""
    head = data[:8192]
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if b"\x00" in head or (head and controls > len(head) * 0.1):
        raise UsageError(f"{shown}: binary file, not SQL")
    return data.decode("utf-8", "replace")


def run_check(args: argparse.Namespace) -> int:
    from schema_review.render import RENDERERS
    from schema_review.review import Reviewer, ReviewSettings
    from schema_review.sizes import LiveDatabase, SizesFile, SizeSource

    if args.large_rows < 0 or args.large_bytes < 0:
        raise UsageError("--large-rows and --large-bytes must be non-negative")
    if not args.paths and not args.alembic:
        raise UsageError("give migration files or directories (PATH...) and/or --alembic DIR")
    if args.output:
        _check_output(args.output)
    if args.db_url:
        _check_db_url(args.db_url, args.dialect)
    sizes: SizeSource = SizeSource()
    if args.sizes:
        sizes = SizesFile(args.sizes)
    elif args.db_url:
        sizes = LiveDatabase(args.db_url, args.dialect)
    settings = ReviewSettings(args.dialect, args.server_version, args.large_rows,
                              args.large_bytes, args.unknown_size)
    # A one-shot batch that allocates many short-lived parse-tree dicts (and imports the
    # parser) with no cycles worth collecting: the cyclic collector was a quarter of its CPU.
    gc.disable()
    reviewer = Reviewer(settings, sizes)
    for shown, path in _collect_files(args.paths, args.changed_since, args.head):
        try:
            data = _read(path)
        except OSError as exc:
            raise UsageError(f"{shown}: cannot read: {exc.strerror}") from None
        reviewer.review_text(shown, _sql_text(shown, data))
    if args.alembic:
        from schema_review.alembic_sql import review_alembic

        review_alembic(reviewer, args.alembic, args.revision_range)
    report = reviewer.report
    if args.approvals:
        from schema_review.approvals import ApprovalStore  # SQLAlchemy: only when asked

        store = ApprovalStore(args.approvals)
        store.annotate(report.findings)
        store.record_pending([f for f in report.findings if f.needs_review], repo=args.repo,
                             commit=args.commit, author=args.author)
    text = RENDERERS[args.format](report)
    sys.stdout.write(text)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise UsageError(f"--output {args.output}: cannot write: {exc.strerror}") from None
    return report.exit_code


def run_decide(args: argparse.Namespace) -> int:
    from schema_review.approvals import ApprovalStore

    store = ApprovalStore(_approvals_url(args.approvals))
    method = store.approve if args.decision == "approve" else store.reject
    result = method(args.key, args.user, args.comment)
    print(f"{result['decision']} {result['key']} by {result['user']} at {result['at']}")
    return 0


def run_pending(args: argparse.Namespace) -> int:
    from schema_review.approvals import ApprovalStore

    store = ApprovalStore(_approvals_url(args.approvals))
    items = store.list_pending(include_decided=args.all)
    if args.format == "json":
        print(json.dumps(items, indent=2))
        return 0
    if not items:
        print("no statements awaiting schema review")
    for item in items:
        decision = item["decision"]
        state = f"{decision['decision']} by {decision['user']}" if decision else "pending"
        print(f"{item['key']}  {item['file']}:{item['line']}  {item['table'] or ''}  [{state}]"
              f"  commit {(item['commit'] or '')[:10]}  {item['author'] or ''}")
        print(f"    {item['statement'].splitlines()[0][:160]}")
        for finding in item["findings"]:
            print(f"    - {finding['rule']}: {'; '.join(finding['reasons'])[:300]}")
    return 0

"""The client-side check: review the migrations in the commits being pushed before they leave
the laptop.  Configured with git config (so each clone can point at its sizes file or DB):

    greenlight.schema.dialect     mysql | mariadb | postgres   (required to enable the check)
    greenlight.schema.sizes       sizes file (default: schema_sizes.json in the repo if present)
    greenlight.schema.dburl       live database URL (instead of a sizes file)
    greenlight.schema.migrations  migrations directory (default: migrations)

``GREENLIGHT_SCHEMA_OVERRIDE=1`` lets the push through anyway (the server gate still applies).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from greenlight.errors import GreenlightError

from schema_review.changes import changed_migrations, config_value, read_at, repo_root
from schema_review.render import render_text
from schema_review.review import Reviewer, ReviewSettings
from schema_review.sizes import LiveDatabase, SizesFile, SizeSource

OVERRIDE_ENV = "GREENLIGHT_SCHEMA_OVERRIDE"


def _sizes_at(root: Path, head: str, configured: str | None) -> SizeSource:
    if configured:
        path = Path(configured)
        return SizesFile(path if path.is_absolute() else root / path)
    try:  # the sizes file as committed at head, else in the work tree
        return SizesFile(data=json.loads(read_at(root, head, "schema_sizes.json")))
    except Exception:  # noqa: BLE001 - absent or unreadable at head: try the work tree
        pass
    default = root / "schema_sizes.json"
    return SizesFile(default) if default.is_file() else SizeSource()


def pre_push_check(repo_dir: Path, base: str | None, head: str) -> tuple[bool, str]:
    """(ok, message): False with findings and safe alternatives when something needs review."""
    try:
        root = repo_root(repo_dir)
        dialect = config_value(root, "greenlight.schema.dialect")
        if not dialect:
            return True, "schema review: not configured (git config greenlight.schema.dialect)"
        migrations = config_value(root, "greenlight.schema.migrations") or "migrations"
        db_url = config_value(root, "greenlight.schema.dburl")
        sizes = LiveDatabase(db_url, dialect) if db_url else _sizes_at(
            root, head, config_value(root, "greenlight.schema.sizes"))
        paths = changed_migrations(root, base, head, [migrations])
        if not paths:
            return True, "schema review: no migration changed"
        reviewer = Reviewer(ReviewSettings(dialect), sizes)
        for path in paths:
            reviewer.review_text(path, read_at(root, head, path))
    except GreenlightError as exc:
        return False, f"schema review: {exc}"
    report = reviewer.report
    text = render_text(report)
    if report.exit_code == 0:
        return True, text
    if os.environ.get(OVERRIDE_ENV) == "1":
        return True, text + (f"{OVERRIDE_ENV}=1: pushing anyway; the build will still stop "
                             "until a reviewer approves.\n")
    return False, text + (f"push refused. Use the safe alternative, or push with {OVERRIDE_ENV}=1 "
                          "to let reviewers approve on the server.\n")

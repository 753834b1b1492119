"""The client-side check: coverage of the commits being pushed, with the clone's own data.

The pre-push hook calls ``pre_push_check`` when ``git config greenlight.prepush.coverage`` is
true; the threshold comes from ``greenlight.coverage.failunder`` (default 100).
"""
from __future__ import annotations

from pathlib import Path

from greenlight.coverage.gate import diff_coverage
from greenlight.coverage.render import render_text
from greenlight.errors import GreenlightError, UsageError
from greenlight.git import config_value, open_repo


def _threshold(repo_dir: Path) -> float:
    value = config_value(open_repo(repo_dir), "greenlight.coverage.failunder")
    if value is None:
        return 100.0
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"git config greenlight.coverage.failunder is {value!r}, not a "
                         "percentage (e.g. 90)") from None


def pre_push_check(repo_dir: Path, base: str | None, head: str) -> tuple[bool, str]:
    """(ok, message) for pushing base..head; ``base`` None or all zeros = a new branch.
    Bad input (no data, unknown sha, stale tree) refuses the push with what to do, because the
    developer turned the check on; ``git push --no-verify`` skips it."""
    try:
        report = diff_coverage(Path(repo_dir), base, head, fail_under=_threshold(repo_dir),
                               combine=True)
    except GreenlightError as exc:
        return False, (f"greenlight coverage check: {exc}\n(turn it off with `git config "
                       "greenlight.prepush.coverage false`, or skip it once with "
                       "GREENLIGHT_COVERAGE_OVERRIDE=1 or --no-verify)\n")
    return report.passed, render_text(report)

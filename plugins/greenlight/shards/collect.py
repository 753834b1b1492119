"""Join the shards' results into one verdict: union check, failures, flaky tests, timings.

Input is what each shard leaves behind: the report written by ``pytest --shard-report`` and,
when tests failed, the JSON of ``greenlight shards rerun-failures`` from the same shard. The
verdict is FAILURE when a test failed twice or when any collected test never ran (the union
check), WARNINGS when the only failures were flaky (unless flaky tests are set to fail), else
SUCCESS. Pure: the Buildbot step and the CLI both read files and hand the data here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from greenlight.errors import UsageError
from greenlight.shards.union import UnionReport, check_union

SUCCESS, WARNINGS, FAILURE = "success", "warnings", "failure"


@dataclass(frozen=True)
class ShardRow:
    """One shard's line in the parent build: counts, predicted vs actual seconds."""

    index: int
    selected: int
    executed: int
    failed: tuple[str, ...]
    predicted_seconds: float
    test_seconds: float
    wall_seconds: float | None  # None: the shard left no report


@dataclass(frozen=True)
class ShardsVerdict:
    result: str
    union: UnionReport
    failed: tuple[str, ...]          # failed and failed again (or never rerun)
    flaky: tuple[str, ...]           # failed, then passed alone
    rows: tuple[ShardRow, ...]
    durations: Mapping[str, float] = field(default_factory=dict)
    messages: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        ran = sum(r.executed for r in self.rows)
        text = f"{len(self.rows)} shards, {ran} tests"
        if self.failed:
            shown = ", ".join(self.failed[:3])
            more = f" and {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
            text += f"; {len(self.failed)} failed: {shown}{more}"
        if self.flaky:
            text += f"; {len(self.flaky)} flaky: {', '.join(self.flaky[:3])}"
        if not self.union.ok:
            text += f"; {self.union.summary()}"
        return text

    def render_text(self) -> str:
        lines = [f"verdict: {self.result.upper()}", self.union.summary(), "",
                 "shard  tests  predicted s  test s   wall s  failed"]
        for r in self.rows:
            wall = f"{r.wall_seconds:8.2f}" if r.wall_seconds is not None else "  (none)"
            lines.append(f"{r.index:>5}  {r.executed:>5}  {r.predicted_seconds:>11.2f}  "
                         f"{r.test_seconds:>6.2f} {wall}  {len(r.failed)}")
        for label, ids in (("failed", self.failed), ("flaky (passed when rerun alone)",
                                                     self.flaky)):
            if ids:
                lines += ["", f"{label}:"] + [f"  {t}" for t in ids]
        for t in self.union.missing:
            lines.append(f"  never ran: {t}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {"result": self.result, "union": self.union.to_json(),
                "failed": list(self.failed), "flaky": list(self.flaky),
                "shards": [{"index": r.index, "selected": r.selected, "executed": r.executed,
                            "failed": list(r.failed), "predicted_seconds": r.predicted_seconds,
                            "test_seconds": round(r.test_seconds, 6),
                            "wall_seconds": r.wall_seconds} for r in self.rows]}


def judge_shards(reports: Iterable[Mapping], reruns: Iterable[Mapping] = (),
                 plan: Mapping | None = None, fail_on_flaky: bool = False) -> ShardsVerdict:
    """Combine shard reports (the latest per shard index wins: a retry replaces its first try)
    with rerun verdicts and, when given, the plan (to notice shards that left no report)."""
    by_index: dict[int, Mapping] = {}
    for report in reports:
        by_index[int(report["shard"])] = report
    planned = {int(s["index"]): s for s in (plan or {}).get("shards", [])}
    collected: set[str] = set()
    for report in by_index.values():
        collected.update(report.get("collected", []))
    if not collected:
        collected = {t for s in planned.values() for t in s.get("tests", [])}
    rerun_verdict: dict[str, str] = {}
    messages: dict[str, str] = {}
    for rerun in reruns:
        for entry in rerun.get("reruns", []):
            rerun_verdict[entry["test_id"]] = entry["verdict"]
            messages[entry["test_id"]] = entry.get("message", "")

    rows, failed, flaky, durations = [], [], [], {}
    for index in sorted(set(by_index) | set(planned)):
        report = by_index.get(index)
        if report is None:
            shard = planned[index]
            rows.append(ShardRow(index, len(shard.get("tests", [])), 0, (),
                                 float(shard.get("predicted_seconds", 0.0)), 0.0, None))
            continue
        results = report.get("results", {})
        shard_failed = tuple(t for t, r in results.items() if r["outcome"] in ("failed",
                                                                               "error"))
        for t in shard_failed:
            (flaky if rerun_verdict.get(t) == "flaky" else failed).append(t)
        for t, r in results.items():
            if r["outcome"] != "skipped":
                durations[t] = float(r["seconds"])
        rows.append(ShardRow(index, len(report.get("selected", [])), len(results), shard_failed,
                             float(report.get("predicted_seconds", 0.0)),
                             sum(float(r["seconds"]) for r in results.values()),
                             report.get("wall_seconds")))
    union = check_union(collected, {i: r.get("results", {}) for i, r in by_index.items()})
    if failed or not union.ok or (flaky and fail_on_flaky):
        result = FAILURE
    elif flaky:
        result = WARNINGS
    else:
        result = SUCCESS
    return ShardsVerdict(result, union, tuple(sorted(failed)), tuple(sorted(flaky)),
                         tuple(rows), durations, messages)


def load_reports(paths: Iterable[str | Path]) -> tuple[list[dict], list[dict]]:
    """Read shard reports and rerun outputs (told apart by their keys), in path order."""
    reports, reruns = [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: cannot read a shard report ({exc})") from exc
        if isinstance(data, dict) and "reruns" in data:
            reruns.append(data)
        elif isinstance(data, dict) and {"shard", "results"} <= set(data):
            reports.append(data)
        else:
            raise UsageError(f"{path}: neither a pytest --shard-report file nor the output of "
                             "`greenlight shards rerun-failures`")
    return reports, reruns

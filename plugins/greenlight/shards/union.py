"""The union check: the tests the shards executed must be exactly the tests that were collected.

Sharding fails silently in one classic way: a shard dies or is skipped and its tests simply
never run, and the build looks green. So the collector checks that every collected test ran
exactly once across all shards, and says which tests are missing, extra or run twice.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class UnionReport:
    collected: int
    executed: int
    missing: tuple[str, ...]      # collected, never executed
    unexpected: tuple[str, ...]   # executed, never collected
    duplicated: tuple[str, ...]   # executed by more than one shard

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.duplicated)

    def summary(self) -> str:
        if self.ok:
            return f"union check ok: {self.executed} of {self.collected} collected tests ran once"
        parts = []
        for label, ids in (("missing", self.missing), ("unexpected", self.unexpected),
                           ("run more than once", self.duplicated)):
            if ids:
                shown = ", ".join(ids[:10]) + (f" (+{len(ids) - 10} more)" if len(ids) > 10
                                               else "")
                parts.append(f"{len(ids)} {label}: {shown}")
        return "union check FAILED: " + "; ".join(parts)

    def to_json(self) -> dict:
        return {"ok": self.ok, "collected": self.collected, "executed": self.executed,
                "missing": list(self.missing), "unexpected": list(self.unexpected),
                "duplicated": list(self.duplicated)}


def check_union(collected: Iterable[str],
                executed_by_shard: Mapping[object, Iterable[str]]) -> UnionReport:
    """Compare the collected ids with what each shard executed (shard key -> ids it ran).

    Pass only the final attempt of a retried shard: its first attempt's results are replaced.
    """
    collected_set = set(collected)
    counts: Counter[str] = Counter()
    for ids in executed_by_shard.values():
        counts.update(set(ids))
    executed = set(counts)
    return UnionReport(
        collected=len(collected_set), executed=len(executed),
        missing=tuple(sorted(collected_set - executed)),
        unexpected=tuple(sorted(executed - collected_set)),
        duplicated=tuple(sorted(t for t, n in counts.items() if n > 1)),
    )

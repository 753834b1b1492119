"""Time estimates are ranges from the calibrated per-row costs, scaled by row width and by a
sample read of the target; metadata changes and unknown row counts get none."""
from __future__ import annotations

from schema_review.costs import COSTS
from schema_review.estimate import SPREAD, estimate
from schema_review.model import TableSize
from tests.schema_review.helpers import review


def _seconds_per_million(server: str, effect: str) -> float:
    return COSTS[server]["seconds_per_million_rows"][effect]


def test_range_follows_the_calibrated_cost_and_names_the_hardware():
    rows = 10_000_000
    text = estimate(TableSize(rows, None, "file"), "rewrite", "postgres")
    low = rows / 1e6 * _seconds_per_million("postgres", "rewrite")
    assert text.startswith("expect ") and COSTS["hardware"]["cpu"] in text
    assert COSTS["measured"][:10] in text
    first = text.split()[1]
    assert abs(float(first) - low) <= 1 or f"{low / 60:.0f}" == first
    assert SPREAD > 1


def test_wider_rows_and_a_slower_target_raise_the_estimate():
    server = COSTS["mariadb"]
    width = server["bytes"] / server["rows"]
    narrow = estimate(TableSize(50_000_000, int(50_000_000 * width), "live"), "copy", "mysql")
    wide = estimate(TableSize(50_000_000, int(50_000_000 * width * 4), "live"), "copy", "mysql")
    slow = estimate(TableSize(50_000_000, None, "live"), "copy", "mysql",
                    read_rate=server["sample_rows_per_second"] / 3)
    assert narrow != wide and "scaled ×3.0" in slow


def test_no_estimate_without_a_constant_or_rows():
    assert estimate(TableSize(10**7, None, "file"), "metadata", "postgres") is None
    assert estimate(TableSize(None, 10**10, "file"), "rewrite", "postgres") is None


def test_large_table_reason_carries_the_range():
    report = review("ALTER TABLE users ALTER COLUMN n TYPE bigint;\n", "postgres")
    assert any("expect " in reason and " – " in reason for reason in report.findings[0].reasons)

"""How long the heavy part of a change will take: a range, from per-row costs measured on real
servers by ``bench/schema_costs.py`` (``costs.py``, with the hardware it ran on).

A single number would promise too much: production tables carry more indexes, wider rows and
concurrent load than the calibration table, so the range runs from the measured cost (scaled by
row width) to five times it.  With a live database the constants are also scaled by how fast
the target reads a sample of the table compared with the calibration server.
"""
from __future__ import annotations

from schema_review.costs import COSTS
from schema_review.model import TableSize

SPREAD = 5.0  # upper end of the range, as a multiple of the calibrated cost
# The calibration measured each kind of work under the name of the effect the rules give.
_SERVER = {"postgres": "postgres", "mysql": "mariadb", "mariadb": "mariadb"}


def estimate(size: TableSize, effect: str, dialect: str, read_rate: float | None = None
             ) -> str | None:
    """'expect 3 s – 15 s of work (…)' for a table of known rows, or None when there is no
    constant for the effect (metadata changes) or no row count."""
    data = COSTS
    server = data[_SERVER[dialect]]
    per_million = server["seconds_per_million_rows"].get(effect)
    if per_million is None or size.rows is None:
        return None
    width = 1.0
    if size.bytes and size.rows:  # wider rows cost more per row than the calibration's
        width = max(1.0, (size.bytes / size.rows) / (server["bytes"] / server["rows"]))
    scale, how = 1.0, ""
    if read_rate:
        scale = min(20.0, max(0.2, server["sample_rows_per_second"] / read_rate))
        how = f"; scaled ×{scale:.1f} by a sample read of the target"
    low = size.rows / 1e6 * per_million * width * scale
    hardware = data["hardware"]
    return (f"expect {_seconds(low)} – {_seconds(low * SPREAD)} of work (calibrated on "
            f"{hardware['cpu']}, {hardware['cores']} cores, {server['version'].split()[0]}, "
            f"{data['measured'][:10]}{how})")


def _seconds(value: float) -> str:
    if value < 1:
        return "under 1 s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"

"""Text rendering of a plan (the engine never prints; the CLI and the Buildbot step do)."""
from __future__ import annotations

from greenlight.shards.planner import Plan


def render_plan_text(plan: Plan) -> str:
    """One line per shard with its predicted time, under the makespan against the ideal."""
    lines = [f"{len(plan.shards)} shards, makespan {plan.makespan:.2f} s, ideal "
             f"{plan.ideal_seconds:.2f} s (ratio {_ratio(plan.makespan, plan.ideal_seconds)}), "
             f"total {plan.total_seconds:.2f} s"]
    if plan.unknown:
        lines.append(f"{len(plan.unknown)} tests without a duration got their module's mean, "
                     f"else the suite's mean {plan.mean_seconds:.3f} s")
    for s in plan.shards:
        lines.append(f"shard {s.index}: {len(s.tests)} tests, "
                     f"predicted {s.predicted_seconds:.2f} s")
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"

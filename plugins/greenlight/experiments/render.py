"""Renderers of experiment results and listings: text for terminals, JSON (the contract),
Markdown for tickets, HTML for pages. Everything taken from the store is escaped in HTML."""
from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone

from greenlight.experiments.definition import Experiment, explain

FORMATS = ("text", "json", "md", "html")


def render_results(results: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(_json_safe(results), indent=2, sort_keys=True, allow_nan=False)
    table = _results_table(results)
    if fmt == "text":
        return _text(results, table)
    if fmt == "md":
        return _markdown(results, table)
    if fmt == "html":
        return _html(results, table)
    raise ValueError(f"unknown format {fmt!r}")


HEADERS = ["metric", "branch", "exposed", "converting", "rate", "Δ rate (CI)", "p (adj)",
           "p always-valid", "D²>N", "per user", "Δ per user (CI)", "p (adj)", "significant"]


def _results_table(results: dict) -> list[list[str]]:
    rows = []
    for metric in results["metrics"]:
        for row in metric["branches"]:
            c = row["vs_control"]
            cells = [metric["metric"], row["branch"], f"{row['exposed']:,}",
                     f"{row['converting']:,}", _pct(row["rate"])]
            if c is None:
                cells += ["—", "—", "—", "—"]
            else:
                rule = c["seed_rule"]
                cells += [f"{_signed_pct(c['rate_difference'])} ({_pct(c['rate_ci'][0], True)}"
                          f" … {_pct(c['rate_ci'][1], True)})",
                          f"{_p(c['rate_p_value'])} ({_p(c['rate_p_adjusted'])})",
                          _p(c["rate_p_always_valid"]),
                          "—" if rule is None else ("yes" if rule["significant"] else "no")]
            cells.append(_num(row["mean_per_user"]))
            if c is None:
                cells += ["—", "—", "(control)"]
            else:
                cells += [f"{_num(c['mean_difference'], True)} ({_num(c['mean_ci'][0], True)}"
                          f" … {_num(c['mean_ci'][1], True)})",
                          f"{_p(c['mean_p_value'])} ({_p(c['mean_p_adjusted'])})",
                          _verdict(c)]
            rows.append(cells)
    return rows


def _verdict(c: dict) -> str:
    parts = []
    if c["rate_significant"]:
        parts.append("rate " + ("up" if c["rate_difference"] > 0 else "down"))
    if c["mean_significant"]:
        parts.append("per user " + ("up" if c["mean_difference"] > 0 else "down"))
    return ", ".join(parts) if parts else "no"


def _heading(results: dict) -> list[str]:
    since = ""
    if results.get("since"):
        since = f" (since {_time(results['since'])})"
    exposed = ", ".join(f"{b} {n:,}" for b, n in results["exposed"].items())
    return [f"Experiment {results['experiment']}: {results['status_label']}{since}",
            results["explanation"],
            f"Exposed users: {exposed}. Significance at {results['alpha']:g} after Holm "
            f"adjustment over {results['comparisons']} comparisons; intervals "
            f"{results['confidence'] * 100:g}%."]


def _text(results: dict, table: list[list[str]]) -> str:
    lines = _heading(results) + [""]
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h)
              for i, h in enumerate(HEADERS)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)).rstrip())
    for row in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    if not table:
        lines.append("(no metric events recorded for exposed users yet)")
    for warning in results["warnings"]:
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown(results: dict, table: list[list[str]]) -> str:
    head = _heading(results)
    lines = [f"## {_md_cell(head[0])}", "", _md_cell(head[1]), "", _md_cell(head[2]), "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table]
    if results["warnings"]:
        lines.append("")
        lines += [f"> **Warning:** {_md_cell(w)}" for w in results["warnings"]]
    return "\n".join(lines) + "\n"


def _html(results: dict, table: list[list[str]]) -> str:
    e = html.escape
    head = _heading(results)
    out = ['<section class="greenlight-experiment-results">', f"<h2>{e(head[0])}</h2>",
           f"<p>{e(head[1])}</p>", f"<p>{e(head[2])}</p>"]
    for warning in results["warnings"]:
        out.append(f'<p class="warning"><strong>Warning:</strong> {e(warning)}</p>')
    out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADERS)
               + "</tr></thead><tbody>")
    for row in table:
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table></section>")
    return "\n".join(out) + "\n"


def experiment_summary(experiment: Experiment) -> dict:
    """One experiment as the list/show JSON and the admin page see it."""
    e = experiment
    return {"name": e.name, "branches": e.weights(), "status": e.status,
            "status_label": e.status_label(), "collection_status": e.collection_status(),
            "rollout_pct": e.rollout_pct,
            "closed_branch": e.closed_branch, "qa_users": list(e.qa_users),
            "qa_groups": list(e.qa_groups), "planned_users": e.planned_users,
            "explanation": explain(e), "updated_by": e.updated_by, "updated_at": e.updated_at,
            "version": e.version}


def render_list(experiments: list[Experiment], fmt: str) -> str:
    summaries = [experiment_summary(e) for e in experiments]
    if fmt == "json":
        return json.dumps(summaries, indent=2, sort_keys=True)
    headers = ["experiment", "status", "what users get now", "changed"]
    rows = [[s["name"], s["status_label"], s["explanation"],
             f"{_time(s['updated_at'])} by {s['updated_by'] or '?'}"] for s in summaries]
    if fmt == "md":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    if fmt == "html":
        e = html.escape
        out = ["<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers)
               + "</tr></thead><tbody>"]
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        return "\n".join(out + ["</tbody></table>"]) + "\n"
    if not rows:
        return "(no experiments defined)\n"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def _pct(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def _signed_pct(value) -> str:
    return _pct(value, True)


def _num(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _p(value) -> str:
    if value is None:
        return "—"
    return "<0.000001" if value < 1e-6 else f"{value:.6f}"


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _json_safe(value):
    """JSON has no NaN or infinity: undefined numbers become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value

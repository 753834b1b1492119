"""Renderers of an experiment report: JSON (the contract), text, Markdown, HTML (Jinja2 with
autoescape: bucket names, attribute values and metric names come from users and apps)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from jinja2 import Environment

from greenlight.experiments.render import _json_safe

FORMATS = ("text", "json", "md", "html")


def render_report(report: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(_json_safe(report), indent=2, sort_keys=True, allow_nan=False) + "\n"
    if fmt == "html":
        return _HTML.render(r=report, day=_day, pct=_pct, num=_num, p=_p, ci=_ci,
                            signed=_signed, verdict=_verdict)
    if fmt in ("text", "md"):
        return _lines(report, markdown=fmt == "md")
    raise ValueError(f"unknown format {fmt!r}")


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _pct(value, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def _num(value, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _p(value) -> str:
    if value is None:
        return "—"
    return f"{value:.6f}" if value >= 0.000001 else f"{value:.1e}"


def _ci(pair, fmt) -> str:
    if not pair or pair[0] is None:
        return "—"
    return f"{fmt(pair[0], True)} … {fmt(pair[1], True)}"


def _signed(value, fmt) -> str:
    return fmt(value, True)


def _verdict(c: dict | None, kind: str) -> str:
    if c is None:
        return "(control)"
    if not c[f"{kind}_significant"]:
        return "no"
    return "up" if c[f"{kind}_difference"] > 0 else "down"


def _lines(r: dict, markdown: bool) -> str:
    def table(headers: list[str], rows: list[list[str]]) -> list[str]:
        if markdown:
            esc = [[c.replace("|", "\\|") for c in row] for row in [headers, *rows]]
            return ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(headers),
                    *("| " + " | ".join(row) + " |" for row in esc[1:])]
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                for row in [headers, *rows]]

    h1, h2 = ("# ", "## ") if markdown else ("", "")
    out = [f"{h1}Experiment {r['experiment']}: report {_day(r['from'])} to {_day(r['to'])} UTC",
           "", f"{r['status_label']}. {r['multiple_comparisons']}", ""]
    for w in r["warnings"]:
        out.append(f"{'> **Warning:** ' if markdown else 'WARNING: '}{w}")
    for b in r["buckets"]:
        out += ["", f"{h2}Bucket {b['name']}: {b['description']}", ""]
        out += table(["branch", "users"], [[br, f"{n:,}"] for br, n in b["users"].items()])
        for a in b["attributes"]:
            bal = a["balance"]
            out += ["", f"Attribute {a['name']} (balance chi-square p = {_p(bal['p_value'])}"
                    f"{', IMBALANCED' if bal['imbalanced'] else ''})", ""]
            branches = list(b["users"])
            out += table(["value", *branches],
                         [[v["value"], *(_pct(v["branches"][br]["share"]) for br in branches)]
                          for v in a["values"]])
        for m in b["metrics"]:
            rows = []
            for row in m["branches"]:
                c = row["vs_control"] or {}
                rows.append([row["branch"], f"{row['users']:,}", f"{row['converting']:,}",
                             _pct(row["rate"]), _ci(row["rate_ci"], _pct),
                             _pct(c.get("rate_difference"), True), _p(c.get("rate_p_value")),
                             _p(c.get("rate_q_value")), _verdict(row["vs_control"], "rate"),
                             _num(row["mean_per_user"]), _ci(row["mean_ci"], _num),
                             _num(c.get("mean_difference"), True), _p(c.get("mean_p_value")),
                             _p(c.get("mean_q_value")), _verdict(row["vs_control"], "mean")])
            out += ["", f"Metric {m['metric']}", ""]
            out += table(["branch", "users", "did it", "rate", "rate CI", "Δ rate", "p", "q",
                          "significant", "per user", "per-user CI", "Δ per user", "p", "q",
                          "significant"], rows)
    return "\n".join(out) + "\n"


_HTML = Environment(autoescape=True).from_string("""\
<section class="experiment-report" id="report">
<h2>Experiment {{ r.experiment }}: {{ day(r['from']) }} to {{ day(r['to']) }} UTC</h2>
<p>{{ r.status_label }}. {{ r.multiple_comparisons }}</p>
{% for w in r.warnings %}<p class="warning bad">{{ w }}</p>
{% endfor %}
{% for b in r.buckets %}
<section class="bucket" id="bucket-{{ b.name }}">
<h3>Bucket {{ b.name }}</h3><p>{{ b.description }}</p>
<table class="users"><tr><th>branch</th><th>users</th></tr>
{% for branch, n in b.users.items() %}<tr><td>{{ branch }}</td><td>{{ "{:,}".format(n) }}</td></tr>
{% endfor %}</table>
{% for a in b.attributes %}
<table class="attribute" data-attribute="{{ a.name }}">
<caption>{{ a.name }}: balance chi-square p = {{ p(a.balance.p_value) }}{% if a.balance.imbalanced %} <b class="bad">imbalanced</b>{% endif %}</caption>
<tr><th>value</th>{% for branch in b.users %}<th>{{ branch }}</th>{% endfor %}</tr>
{% for v in a['values'] %}<tr><td>{{ v.value }}</td>{% for branch in b.users %}<td>{{ pct(v.branches[branch].share) }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endfor %}
{% for m in b.metrics %}
<table class="metric" data-metric="{{ m.metric }}"><caption>{{ m.metric }}</caption>
<tr><th>branch</th><th>users</th><th>did it</th><th>rate (CI)</th><th>Δ rate (CI)</th><th>p</th><th>q</th><th>always-valid p</th><th>significant</th>
<th>per user (CI)</th><th>Δ per user (CI)</th><th>p</th><th>q</th><th>significant</th></tr>
{% for row in m.branches %}{% set c = row.vs_control %}
<tr><td>{{ row.branch }}</td><td>{{ "{:,}".format(row.users) }}</td><td>{{ "{:,}".format(row.converting) }}</td>
<td>{{ pct(row.rate) }} ({{ ci(row.rate_ci, pct) }})</td>
{% if c %}<td>{{ pct(c.rate_difference, True) }} ({{ ci(c.rate_ci, pct) }})</td><td>{{ p(c.rate_p_value) }}</td><td>{{ p(c.rate_q_value) }}</td><td>{{ p(c.rate_p_always_valid) }}</td><td>{{ verdict(c, 'rate') }}</td>
{% else %}<td>—</td><td>—</td><td>—</td><td>—</td><td>(control)</td>{% endif %}
<td>{{ num(row.mean_per_user) }} ({{ ci(row.mean_ci, num) }})</td>
{% if c %}<td>{{ num(c.mean_difference, True) }} ({{ ci(c.mean_ci, num) }})</td><td>{{ p(c.mean_p_value) }}</td><td>{{ p(c.mean_q_value) }}</td><td>{{ verdict(c, 'mean') }}</td>
{% else %}<td>—</td><td>—</td><td>—</td><td>(control)</td>{% endif %}</tr>
{% endfor %}</table>
{% endfor %}
</section>
{% endfor %}
</section>
""")

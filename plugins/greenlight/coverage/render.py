"""Renderers of a coverage Report: text (terminal, hook), JSON (the contract), Markdown (a PR
comment), HTML (changed lines in context, uncovered ones highlighted). Pure: Report in, str out.
Everything taken from files or commits is escaped in Markdown and HTML."""
from __future__ import annotations

import html
import json
from collections.abc import Callable

from greenlight.coverage.report import FileReport, Report, display_path

CONTEXT = 3  # lines shown around changed lines in HTML


def _dest(n: int) -> str:
    return "exit" if n < 0 else str(n)


def _ranges(lines: list[int]) -> str:
    out: list[tuple[int, int]] = []
    for n in sorted(lines):
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


def render_json(report: Report, indent: int | None = None) -> str:
    """Compact by default (a program reads it; json's C encoder only runs without indent);
    ``indent`` for a person at a terminal."""
    return json.dumps(report.to_dict(), indent=indent) + "\n"


def render_text(report: Report) -> str:
    lines = [report.summary()]
    for f in report.counted:
        lines.append(f"  {display_path(f.path)}: {f.percent:.2f}% "
                     f"({len(f.measure.statements) - len(f.measure.missing)}/"
                     f"{len(f.measure.statements)} lines"
                     + (f", {f.measure.branches_covered}/{f.measure.branches} branches"
                        if f.measure.branches else "") + ")")
        for line in f.measure.missing:
            origin = f.origin_of(line)
            who = f" {origin.commit[:10]} {origin.author}" if origin else ""
            lines.append(f"    line {line} not covered{who}")
        for line, dests in sorted(f.measure.partial.items()):
            origin = f.origin_of(line)
            who = f" {origin.commit[:10]} {origin.author}" if origin else ""
            lines.append(f"    line {line} partial branch: never jumped to "
                         f"{', '.join(_dest(d) for d in dests)}{who}")
    for skipped in report.skipped:
        lines.append(f"  not counted: {display_path(skipped.path)} ({skipped.reason})")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    """Escape Markdown/HTML specials of repository-controlled text inside a table cell."""
    text = html.escape(text, quote=False)
    for ch in "\\`*_[]|#<>":
        text = text.replace(ch, "\\" + ch)
    return text


def render_markdown(report: Report) -> str:
    mark = "✅" if report.passed else "❌"
    out = [f"### {mark} Coverage of new code", "", _md(report.summary()), ""]
    if report.counted:
        out += ["| File | New lines | Covered | Branches | % | Missing lines | Partial branches |",
                "|---|---:|---:|---:|---:|---|---|"]
        for f in report.counted:
            m = f.measure
            out.append(
                f"| {_md(display_path(f.path))} | {len(m.statements)} | "
                f"{len(m.statements) - len(m.missing)} | "
                f"{m.branches_covered}/{m.branches} | {f.percent:.2f} | "
                f"{_ranges(m.missing)} | {', '.join(str(n) for n in sorted(m.partial))} |")
        problems = [(f, n) for f in report.counted
                    for n in sorted(set(f.measure.missing) | set(f.measure.partial))]
        if problems:
            out += ["", "| Uncovered | Commit | Author |", "|---|---|---|"]
            for f, n in problems:
                origin = f.origin_of(n)
                kind = "" if n in f.measure.missing else " (partial branch)"
                out.append(f"| {_md(display_path(f.path))}:{n}{kind} | "
                           f"{origin.commit[:10] if origin else ''} | "
                           f"{_md(origin.author) if origin else ''} |")
    if report.skipped:
        out += ["", "<details><summary>Changed files not counted</summary>", ""]
        out += [f"- {_md(display_path(s.path))}: {_md(s.reason)}" for s in report.skipped]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:sans-serif;margin:1em}
table.src{border-collapse:collapse;font-family:monospace;font-size:13px;width:100%}
table.src td{padding:0 .5em;white-space:pre;vertical-align:top}
td.n{color:#888;text-align:right;user-select:none}
tr.miss{background:#fdd} tr.part{background:#ffc} tr.run{background:#dfd}
tr.ctx{color:#555} tr.noexec{color:#555;font-style:italic;background:#f4f4f4}
tr.gap td{background:#eee;color:#888}
td.who{color:#666;font-size:12px}
"""


def _html_file(f: FileReport) -> str:
    m = f.measure
    changed = {line: stmt for stmt, lines in m.changed_in.items() for line in lines}
    shown: set[int] = set()
    for line in m.changed or changed:
        shown.update(range(max(1, line - CONTEXT), line + CONTEXT + 1))
    shown = {n for n in shown if n <= len(m.source_lines)}
    esc = html.escape
    rows, prev = [], 0
    for n in sorted(shown):
        if prev and n != prev + 1:
            rows.append('<tr class="gap"><td class="n">…</td><td></td><td></td></tr>')
        prev = n
        stmt = changed.get(n)
        who = ""
        if stmt is None:
            cls = "noexec" if n in m.changed else "ctx"
        elif stmt in m.missing:
            cls = "miss"
        elif stmt in m.partial:
            cls = "part"
        else:
            cls = "run"
        if stmt is not None and cls in ("miss", "part"):
            origin = f.origin_of(stmt)
            if origin:
                who = f"{esc(origin.commit[:10])} {esc(origin.author)}"
            if cls == "part" and n == stmt:
                who += " — never jumped to " + esc(", ".join(_dest(d) for d in m.partial[stmt]))
        rows.append(f'<tr class="{cls}"><td class="n">{n}</td>'
                    f"<td>{esc(m.source_lines[n - 1])}</td><td class=\"who\">{who}</td></tr>")
    title = esc(display_path(f.path))
    if f.old_path:
        title += f" <small>(renamed from {esc(display_path(f.old_path))})</small>"
    return (f"<h2>{title} — {f.percent:.2f}%</h2>\n<table class=\"src\">\n"
            + "\n".join(rows) + "\n</table>")


def render_html(report: Report) -> str:
    esc = html.escape
    parts = ["<!doctype html><html><head><meta charset=\"utf-8\">",
             "<title>Coverage of new code</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>Coverage of new code: {'passed' if report.passed else 'FAILED'}</h1>",
             f"<p>{esc(report.summary())}</p>",
             f"<p>base {esc(report.base or '(first push)')} → head {esc(report.head)}</p>",
             ("<p><span style=\"background:#fdd\">not run</span> "
              "<span style=\"background:#ffc\">partial branch</span> "
              "<span style=\"background:#dfd\">run</span> "
              "<span style=\"background:#f4f4f4\"><i>changed, not executable</i></span></p>")]
    for f in sorted(report.counted, key=lambda f: f.percent):
        parts.append(_html_file(f))
    if report.skipped:
        parts.append("<h2>Changed files not counted</h2><ul>")
        parts += [f"<li>{esc(display_path(s.path))}: {esc(s.reason)}</li>"
                  for s in report.skipped]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text, "json": render_json, "markdown": render_markdown, "html": render_html,
}

"""Renderers of a review report: text for people, JSON (the contract), Markdown (build logs,
pull requests), SARIF 2.1.0 for code-scanning tools.  The engine never prints; these return
strings.  ``summary_line`` and ``render_markdown`` read the JSON contract itself (a dict), so a
Buildbot step that only has the worker's JSON renders with the same code as the CLI.
"""
from __future__ import annotations

import json

from schema_review.review import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_json(report: Report) -> str:
    # one line: json's C encoder only runs without indent (indenting tripled the CLI's CPU);
    # the report is a tree built here, so the encoder need not track containers for cycles
    return json.dumps(report.to_dict(), check_circular=False) + "\n"


def summary_line(data: dict) -> str:
    """One line for a step summary or the end of a log, from the JSON contract."""
    summary = data["summary"]
    count = summary["statements_needing_review"]
    if count:
        return f"needs schema review: {count} statement(s)"
    approved = summary.get("approved", 0)
    text = f"schema review: {summary['files']} migration file(s) safe"
    return text + (f" ({approved} approved)" if approved else "")


def render_markdown(data: dict) -> str:
    """The flagged findings as Markdown, from the JSON contract."""
    lines = [f"### {summary_line(data)}", "",
             f"{data['server_version']}: {data['summary']['files']} file(s), "
             f"{data['summary']['statements']} statement(s)"]
    for f in data["findings"]:
        if f["verdict"] != "review":
            continue
        state = "approved" if not f["needs_review"] else f"**needs review** ({f['danger']})"
        lines += ["", f"#### `{f['file']}:{f['line']}` {state} — `{f['rule']}`"
                  f"{' on `' + f['table'] + '`' if f['table'] else ''}", "",
                  "```sql", f["statement"], "```"]
        lines += [f"- {reason}" for reason in f["reasons"]]
        if f["alternative"] and f["needs_review"]:
            lines += ["", "Safe alternative:", "```", f["alternative"], "```",
                      f"Approve: `greenlight schema approve {f['key']}`"]
    return "\n".join(lines) + "\n"


def render_text(report: Report, show_safe: bool = False) -> str:
    lines = [f"schema review ({report.server_version}): {len(report.files)} file(s), "
             f"{report.statements} statement(s)"]
    for f in report.findings:
        if f.verdict == "safe" and not show_safe:
            continue
        if f.verdict == "safe":
            status = "safe"
        elif f.approval and f.approval.get("decision") == "approved":
            status = f"APPROVED by {f.approval.get('user')}"
        elif f.approval and f.approval.get("decision") == "rejected":
            status = f"REJECTED by {f.approval.get('user')}"
        else:
            status = f"NEEDS REVIEW ({f.danger})"
        lines.append("")
        lines.append(f"{f.file}:{f.line}: {status} [{f.rule}] {f.operation}"
                     f"{' on ' + f.table if f.table else ''}")
        lines.append(f"    {f.statement.splitlines()[0][:200] if f.statement else ''}")
        for reason in f.reasons:
            lines.append(f"    - {reason}")
        if f.approval and f.approval.get("comment"):
            lines.append(f"    comment: {f.approval['comment']}")
        if f.alternative and f.needs_review:
            lines.append("    safe alternative:")
            lines.extend("      " + alt for alt in f.alternative.splitlines())
        if f.needs_review:
            lines.append(f"    approve: greenlight schema approve {f.key}")
    count = report.statements_needing_review()
    lines.append("")
    lines.append(f"needs schema review: {count} statement(s)" if count else
                 "schema review: all statements safe or approved")
    return "\n".join(lines) + "\n"


def render_sarif(report: Report) -> str:
    rules: dict[str, dict] = {}
    results = []
    for f in report.findings:
        if f.verdict != "review":
            continue
        rules.setdefault(f.rule, {
            "id": f.rule,
            "shortDescription": {"text": f.rule},
            "helpUri": "https://example.invalid/greenlight/schema_review#rules",
        })
        message = "; ".join(f.reasons)
        if f.alternative:
            message += "\nSafe alternative:\n" + f.alternative
        result = {
            "ruleId": f.rule,
            "level": "note" if not f.needs_review else (
                "error" if f.danger in ("fails", "unparsed") else "warning"),
            "message": {"text": message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.file},
                "region": {"startLine": max(1, f.line)},
            }}],
            "partialFingerprints": {"greenlightSchemaKey/v1": f.key},
            "properties": {"table": f.table, "operation": f.operation, "danger": f.danger,
                           "effect": f.effect, "needs_review": f.needs_review},
        }
        if f.approval and f.approval.get("decision") == "approved":
            result["suppressions"] = [{"kind": "external", "status": "accepted",
                                       "justification": f"approved by {f.approval.get('user')}: "
                                                        f"{f.approval.get('comment') or ''}"}]
        results.append(result)
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "greenlight-schema-review", "version": "0.1.0",
                                "informationUri": "https://example.invalid/greenlight",
                                "rules": list(rules.values())}},
            "results": results,
        }],
    }
    return json.dumps(sarif, indent=2)


RENDERERS = {"text": render_text, "json": render_json, "sarif": render_sarif,
             "markdown": lambda report: render_markdown(report.to_dict())}

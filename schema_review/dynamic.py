"""SQL that a migration builds or stores and runs later: MySQL ``SET @s = …; PREPARE st FROM
@s; EXECUTE st``, and stored procedures (MySQL ``DELIMITER`` blocks, PostgreSQL PL/pgSQL)
reached by ``CALL`` or ``SELECT f()`` in the same change.

The text is recovered when it is a constant: a string literal, an ``IF``/``CONCAT`` of
literals, or user variables set to literals earlier in the session.  An ``IF`` yields both
branches (the migration may take either), so each is reviewed.  When the text depends on data
(a column value, ``DATABASE()`` inside the string, a loop) it is unknown and the ``EXECUTE``
is flagged for review instead of passing as "no schema change".
"""
from __future__ import annotations

import re

from schema_review.split import top_level_offsets

MAX_VARIANTS = 16  # IF inside CONCAT multiplies the possible texts; past this we call it unknown


def fold_mysql(node, variables: dict[str, list[str] | None]) -> list[str] | None:
    """The possible string values of a sqlglot MySQL expression, or None when unknown."""
    from sqlglot import exp

    if isinstance(node, exp.Literal):
        return [str(node.this)]
    if isinstance(node, (exp.Paren, exp.Subquery)):
        return fold_mysql(node.this, variables)
    if isinstance(node, exp.Select):
        if node.args.get("from_") or node.args.get("from") or len(node.expressions) != 1:
            return None
        return fold_mysql(node.expressions[0], variables)
    if isinstance(node, exp.Alias):
        return fold_mysql(node.this, variables)
    if isinstance(node, exp.Parameter):
        return variables.get(f"@{node.name}".lower())
    if isinstance(node, exp.If):
        branches = [node.args.get("true"), node.args.get("false")]
        out: list[str] = []
        for branch in branches:
            if branch is None:
                out.append("")  # IF without ELSE yields NULL: nothing runs
                continue
            values = fold_mysql(branch, variables)
            if values is None:
                return None
            out.extend(values)
        return _dedupe(out)
    if isinstance(node, exp.Concat):
        combos = [""]
        for part in node.expressions:
            values = fold_mysql(part, variables)
            if values is None:
                return None
            combos = [c + v for c in combos for v in values]
            if len(combos) > MAX_VARIANTS:
                return None
        return _dedupe(combos)
    if isinstance(node, exp.Null):
        return [""]
    return None


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


_PROCEDURE_HEAD = re.compile(
    r"^\s*create\s+(?:or\s+replace\s+)?(?:definer\s*=\s*(?:`[^`]*`|'[^']*'|[^\s@]+)"
    r"(?:@(?:`[^`]*`|'[^']*'|\S+))?\s+)?procedure\s+(?:if\s+not\s+exists\s+)?"
    r"((?:`[^`]*`|[\w$]+)(?:\s*\.\s*(?:`[^`]*`|[\w$]+))?)\s*\(", re.IGNORECASE)
_CONTROL_END = re.compile(r"^(end\s+(if|while|loop|repeat|case)\b|end\b)\s*(\w+)?", re.I)
_CONTROL_WORD = re.compile(r"^(begin|else|repeat|loop|declare\s+continue\s+handler\s+for\s+"
                           r"[^;]*?\s+(?=\S))\b", re.IGNORECASE)
_LABEL = re.compile(r"^[\w$]+\s*:\s*(?=(begin|loop|repeat|while)\b)", re.IGNORECASE)
_CONDITION = re.compile(r"^(if|elseif|while|when|case)\b", re.IGNORECASE)


def routine_name(name: str) -> str:
    return name.replace("`", "").replace('"', "").split(".")[-1].strip().lower()


def mysql_procedure(sql: str) -> tuple[str, str] | None:
    """(name, body) of ``CREATE PROCEDURE name(...) … BEGIN … END``; None if not one."""
    head = _PROCEDURE_HEAD.match(sql)
    if not head:
        return None
    depth, pos, n = 1, head.end(), len(sql)
    while pos < n and depth:  # skip the parameter list
        ch = sql[pos]
        depth += 1 if ch == "(" else -1 if ch == ")" else 0
        pos += 1
    body = sql[pos:]
    begin = re.search(r"\bbegin\b", body, re.IGNORECASE)
    if begin is None:
        return routine_name(head.group(1)), body  # a single-statement procedure
    inner = body[begin.end():]
    inner = re.sub(r"\bend\s*[\w$]*\s*$", "", inner.rstrip().rstrip(";"), flags=re.IGNORECASE)
    return routine_name(head.group(1)), inner


def _after_then(text: str) -> str:
    """What follows the top-level THEN/DO of an IF/WHILE/WHEN condition (quotes and
    parentheses skipped); '' if there is none."""
    n = len(text)
    for i in top_level_offsets(text):
        word = 4 if text[i:i + 4].lower() == "then" else 2 if text[i:i + 2].lower() == "do" else 0
        if word:
            before = text[i - 1] if i else " "
            after = text[i + word] if i + word < n else " "
            if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
                return text[i + word:]
    return ""


def strip_control(piece: str) -> str:
    """The SQL statement inside one ';'-separated piece of a procedure body, without the
    control flow around it: ``IF … THEN ALTER …`` → ``ALTER …``; ``END IF`` → ''."""
    text = piece.strip()
    for _ in range(20):
        before = text
        end = _CONTROL_END.match(text)
        if end:
            text = text[end.end():].strip()
        label = _LABEL.match(text)
        if label:
            text = text[label.end():].strip()
        word = _CONTROL_WORD.match(text)
        if word:
            text = text[word.end():].strip()
        if _CONDITION.match(text):
            text = _after_then(text).strip()
        if re.match(r"^declare\b", text, re.IGNORECASE):
            return ""
        if text == before:
            break
    return text

"""Split a migration file into statements, keeping each statement's line number.

Parsers want one statement at a time and know nothing of client-side syntax, so we split
ourselves: MySQL's ``DELIMITER`` command, ``/*! ... */`` executable comments (code, not
comments: their content runs when the server version allows it), ``#`` comments; Postgres
``$tag$`` bodies, ``E''`` strings and nested block comments.  The splitter never raises on
malformed input: an unterminated string or comment simply ends the last statement, which the
parser then reports as unparsed.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

MYSQL_DIALECTS = ("mysql", "mariadb")
DIALECTS = ("mysql", "mariadb", "postgres")


@dataclass(frozen=True)
class Statement:
    """One statement: its code (comments removed, executable comments unwrapped) and origin."""

    sql: str
    line: int
    path: str = ""


_DELIMITER_LINE = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[^\n]*", re.IGNORECASE)
_PSQL_META = re.compile(r"[ \t]*\\[^\n]*")
# A tag is an identifier without '$': ASCII letters, '_', digits after the first, and any
# non-ASCII character (as PostgreSQL's lexer reads high-bit bytes).  Written as "everything but
# the other ASCII characters": the positive class with \x80-\uffff took 17 ms to compile.
_DOLLAR_TAG = re.compile(r"\$([^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"
                         r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]*)?\$")
_EXEC_COMMENT = re.compile(r"/\*(M?)!(\d{5,6})?")
# A stored program sent without DELIMITER (a migration tool passing the file as one
# multi-statement string, as the server parses it): its body's ';' do not end the statement.
_ROUTINE_HEAD = re.compile(r"\s*create\s+(?:or\s+replace\s+)?(?:definer\s*=\s*\S+\s+)?"
                           r"(?:procedure|function|trigger|event)\b", re.IGNORECASE)
_BLOCK_WORD = re.compile(r"\b(begin|case|end)\b(?:\s+(if|while|loop|repeat|case)\b)?",
                         re.IGNORECASE)


# A quoted string from its opening quote: doubled quotes stay inside, and with backslash
# escapes a backslash takes the next character.  Possessive (*+): an unterminated string must
# not backtrack into a doubled quote and end early.
_QUOTED = {
    (quote, backslash): re.compile(
        f"{re.escape(quote)}(?:[^{re.escape(quote)}" + ("\\\\]+|\\\\." if backslash else "]+")
        + f"|{re.escape(quote * 2)})*+{re.escape(quote)}", re.DOTALL)
    for quote in ("'", '"', "`") for backslash in (False, True)}
# Scanner patterns by (dialect family, delimiter, inside /*! */): built once, not per file.
_PATTERNS: dict[tuple, tuple] = {}


def _version_number(version: tuple[int, ...]) -> int:
    """MySQL writes 8.0.35 as 80035 and MariaDB 10.11.6 as 101106 in ``/*!`` comments."""
    major, minor, patch = (tuple(version) + (0, 0, 0))[:3]
    return major * 10000 + minor * 100 + patch


def _exec_comment_runs(flavour: str, version: tuple[int, ...], mariadb_only: bool,
                       digits: str | None) -> bool:
    """Decide whether a ``/*!NNNNN`` (or MariaDB ``/*M!NNNNNN``) comment is executed."""
    if mariadb_only and flavour != "mariadb":
        return False
    if not digits:
        return True
    wanted = int(digits)
    if flavour == "mariadb" and not mariadb_only:
        # MariaDB compares 5-digit MySQL versions against 5.7.0 and skips newer ones.
        return wanted < 50700
    return wanted <= _version_number(version)


def top_level_offsets(text: str) -> Iterator[int]:
    """Offsets of the characters outside quotes and parentheses (the parentheses themselves
    excluded), MySQL's way: inside '…' and "…" a backslash escapes the next character."""
    depth, quote, i, n = 0, "", 0, len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            yield i
        i += 1


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and quotes (ALTER actions, RENAME pairs)."""
    cuts = [i for i in top_level_offsets(text) if text[i] == sep]
    parts = [text[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(text)])]
    return [p.strip() for p in parts if p.strip()]


class _Scanner:
    """A single forward pass over the text; ``pos`` only moves forward, so input of any shape
    terminates in linear time."""

    def __init__(self, text: str, dialect: str, version: tuple[int, ...], path: str):
        self.text = text
        self.dialect = dialect
        self.mysql = dialect in MYSQL_DIALECTS
        self.version = version
        self.path = path
        self.delimiter = ";"
        self.statements: list[Statement] = []
        self.parts: list[str] = []
        self.start: int | None = None  # offset of the first code character of the statement
        self.exec_depth = 0  # inside /*! ... */ whose content is code
        self.routine: bool | None = None  # statement is CREATE PROCEDURE/… (None: not known)
        self.blocks = 0  # BEGIN/CASE … END nesting inside a stored program
        self._line_at = (0, 1)  # (offset, line number there): lines are counted once, forward
        self._set_pattern()

    def _set_pattern(self) -> None:
        key = (self.mysql, self.delimiter, bool(self.exec_depth))
        if key not in _PATTERNS:
            _PATTERNS[key] = self._patterns()
        self.pattern_inside, self.pattern_between = _PATTERNS[key]

    def _patterns(self) -> tuple:
        specials = ["'", '"', "--", "/*"]
        if self.mysql:
            specials += ["`", "#"]
            if self.exec_depth:
                specials.append("*/")
        else:
            specials += ["$"]
        alternatives = re.escape(self.delimiter) + "|" + "|".join(re.escape(s) for s in specials)
        # Newlines only matter between statements (a client command starts a line there);
        # inside one they are plain code, so the scan does not stop at each (that would be
        # most of its time on long statements).
        return re.compile(alternatives), re.compile(alternatives + "|\n")

    def _code(self, begin: int, end: int) -> None:
        chunk = self.text[begin:end]
        if not chunk:
            return
        if self.start is None:
            stripped = len(chunk) - len(chunk.lstrip())
            if stripped == len(chunk):
                self.parts.append(chunk)
                return
            self.start = begin + stripped
        self.parts.append(chunk)

    def _flush(self) -> None:
        sql = "".join(self.parts).strip()
        if sql and self.start is not None:
            offset, line = self._line_at
            line += self.text.count("\n", offset, self.start)
            self._line_at = (self.start, line)
            self.statements.append(Statement(sql, line, self.path))
        self.parts = []
        self.start = None
        self.routine = None
        self.blocks = 0

    def _track_blocks(self, begin: int, end: int) -> None:
        """Count BEGIN/CASE … END in plain code (not quotes or comments) of a stored program."""
        if self.start is None or not self.mysql or self.delimiter != ";":
            return
        if self.routine is None:
            self.routine = bool(_ROUTINE_HEAD.match(self.text, self.start))
        if not self.routine:
            return
        for match in _BLOCK_WORD.finditer(self.text, begin, end):
            word, closes = match.group(1).lower(), (match.group(2) or "").lower()
            if word in ("begin", "case") and not closes:
                self.blocks += 1
            elif word == "end" and closes in ("", "case"):
                self.blocks = max(0, self.blocks - 1)

    def _client_command(self, pos: int) -> int | None:
        """Handle ``DELIMITER x`` (MySQL) or ``\\meta`` (psql) at the start of a statement."""
        if self.start is not None or self.exec_depth:
            return None
        if self.mysql:
            match = _DELIMITER_LINE.match(self.text, pos)
            if match:
                self._flush()
                self.delimiter = match.group(1)
                self._set_pattern()
                return match.end()
        else:
            match = _PSQL_META.match(self.text, pos)
            if match:
                self._flush()
                return match.end()
        return None

    def run(self) -> list[Statement]:
        text, n = self.text, len(self.text)
        pos = 0
        line_start = True
        while pos < n:
            if line_start:
                line_start = False
                after = self._client_command(pos)
                if after is not None:
                    pos = after
                    continue
            pattern = self.pattern_between if self.start is None else self.pattern_inside
            match = pattern.search(text, pos)
            if not match:
                self._code(pos, n)
                self._track_blocks(pos, n)
                break
            token, at = match.group(0), match.start()
            self._code(pos, at)
            self._track_blocks(pos, at)
            pos = match.end()
            if token == self.delimiter:
                if self.blocks:  # a ';' inside a stored program's body
                    self.parts.append(token)
                    continue
                self._flush()
                continue
            if token == "\n":
                self.parts.append("\n")
                line_start = True
            elif token in ("'", '"', "`"):
                pos = self._quoted(at, token)
            elif token == "--":
                if self.mysql and pos < n and text[pos] not in " \t\r\n":
                    self._code(at, pos)  # MySQL needs whitespace after --; else it is an operator
                    continue
                pos = self._line_comment(pos)
            elif token == "#":
                pos = self._line_comment(pos)
            elif token == "/*":
                pos = self._block_comment(at)
            elif token == "*/":  # end of an executed /*! ... */ comment
                self.exec_depth -= 1
                self._set_pattern()
                self.parts.append(" ")
            elif token == "$":
                pos = self._dollar(at)
        self._flush()
        return self.statements

    def _quoted(self, at: int, quote: str) -> int:
        text, n = self.text, len(self.text)
        backslash = (self.mysql and quote != "`") or (
            not self.mysql and quote == "'" and at > 0 and text[at - 1] in "eE"
            and (at < 2 or not (text[at - 2].isalnum() or text[at - 2] == "_")))
        match = _QUOTED[(quote, backslash)].match(text, at)
        pos = match.end() if match else n  # unterminated: the rest of the text
        self._code(at, pos)
        return pos

    def _line_comment(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return len(self.text) if end < 0 else end

    def _block_comment(self, at: int) -> int:
        text, n = self.text, len(self.text)
        if self.mysql:
            match = _EXEC_COMMENT.match(text, at)
            if match:
                flavour = self.dialect
                if _exec_comment_runs(flavour, self.version, bool(match.group(1)),
                                      match.group(2)):
                    self.exec_depth += 1
                    self._set_pattern()
                    self.parts.append(" ")
                    return match.end()
            end = text.find("*/", at + 2)
            self.parts.append(" ")
            return n if end < 0 else end + 2
        depth, pos = 0, at
        while pos < n:  # Postgres block comments nest
            if text.startswith("/*", pos):
                depth += 1
                pos += 2
            elif text.startswith("*/", pos):
                depth -= 1
                pos += 2
                if depth == 0:
                    break
            else:
                nxt = min((i for i in (text.find("/*", pos), text.find("*/", pos)) if i >= 0),
                          default=n)
                pos = nxt
        self.parts.append(" ")
        return min(pos, n)

    def _dollar(self, at: int) -> int:
        text = self.text
        if at > 0 and (text[at - 1].isalnum() or text[at - 1] == "_"):
            self._code(at, at + 1)  # part of an identifier such as a$b
            return at + 1
        match = _DOLLAR_TAG.match(text, at)
        if not match:
            self._code(at, at + 1)  # $1 parameter or stray dollar
            return at + 1
        tag = match.group(0)
        end = text.find(tag, match.end())
        end = len(text) if end < 0 else end + len(tag)
        self._code(at, end)
        return end


def split_statements(text: str, dialect: str, version: tuple[int, ...] = (8, 0, 35),
                     path: str = "") -> list[Statement]:
    """Split ``text`` into statements for ``dialect`` (mysql, mariadb or postgres).

    ``version`` is the server version, used to decide which ``/*!NNNNN`` comments run.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", " ")
    return _Scanner(text, dialect, version, path).run()

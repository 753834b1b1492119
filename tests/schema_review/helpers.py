"""Shared test helpers: review SQL text against a fixed sizes file with known columns."""
from __future__ import annotations

from schema_review.review import Report, ReviewSettings, review_texts
from schema_review.sizes import SizesFile

LARGE = {"rows": 5_000_000, "bytes": 3 << 30}
SMALL = {"rows": 100, "bytes": 16_384}

MYSQL_COLUMNS = {
    "users": {"name": "varchar(20) not null", "nick": "varchar(10)", "n": "int",
              "c": "enum('a','b')", "d": "int default 1", "bio": "text"},
}
PG_COLUMNS = {
    "users": {"name": "character varying(20) not null", "n": "integer", "t": "text",
              "price": "numeric(10,2)", "email": "text not null", "id": "bigint not null"},
}


def sizes(dialect: str) -> SizesFile:
    columns = PG_COLUMNS if dialect == "postgres" else MYSQL_COLUMNS
    return SizesFile(data={"tables": {"users": LARGE, "orgs": LARGE, "tiny": SMALL},
                           "columns": columns})


def review(sql: str, dialect: str, version: str | None = None, path: str = "m/0001.sql",
           **settings) -> Report:
    return review_texts([(path, sql)], ReviewSettings(dialect, version, **settings),
                        sizes(dialect))


def last(sql: str, dialect: str, version: str | None = None):
    """The findings of the last statement (earlier statements only set up context)."""
    report = review(sql, dialect, version)
    last_line = max(f.line for f in report.findings)
    return [f for f in report.findings if f.line == last_line]

"""Benchmark: review 1,000 migration files per dialect in one run; print files/s.

Goal: ≤ 2 s for 1,000 files.  For Postgres, squawk (PyPI ``squawk-cli``) is timed on the same
files and the ratio printed; if squawk is not installed, that is printed instead.

    .venv/bin/python bench/schema_review.py [--files 1000]
"""
from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from schema_review.review import ReviewSettings, review_texts  # noqa: E402
from schema_review.sizes import SizesFile  # noqa: E402

MYSQL = [
    "ALTER TABLE users ADD COLUMN c{i} INT NULL;",
    "ALTER TABLE users ADD INDEX idx_{i} (email);",
    "CREATE TABLE t{i} (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, created DATETIME);",
    "ALTER TABLE orders MODIFY note VARCHAR(200) NOT NULL;",
    "ALTER TABLE users DROP COLUMN legacy_{i};",
    "ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4, ALGORITHM=INPLACE, LOCK=NONE;",
    "RENAME TABLE old_{i} TO new_{i};",
    "/*!50000 ALTER TABLE users ADD COLUMN x{i} INT */;",
    "INSERT INTO settings (k, v) VALUES ('k{i}', 'v');",
    "CREATE INDEX i{i} ON orders (created) ALGORITHM=INPLACE LOCK=NONE;",
]
POSTGRES = [
    "ALTER TABLE users ADD COLUMN c{i} integer;",
    "CREATE INDEX idx_{i} ON users (email);",
    "CREATE INDEX CONCURRENTLY idx_c{i} ON users (email);",
    "CREATE TABLE t{i} (id bigint PRIMARY KEY, name varchar(40) NOT NULL, at timestamptz);",
    "ALTER TABLE users ADD CONSTRAINT c{i} CHECK (age > 0) NOT VALID;",
    "ALTER TABLE users VALIDATE CONSTRAINT c{i};",
    "ALTER TABLE users ALTER COLUMN name TYPE text;",
    "ALTER TABLE users ADD COLUMN u{i} uuid DEFAULT gen_random_uuid();",
    "ALTER TABLE users ALTER COLUMN age SET NOT NULL;",
    "DO $$ BEGIN RAISE NOTICE 'x'; END $$;",
]


def make_files(root: Path, templates: list[str], count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        lines = [f"-- migration {n}"]
        for _ in range(rng.randint(2, 6)):
            lines.append(rng.choice(templates).format(i=rng.randint(0, 10**6)))
        path = root / f"{n:04d}_change.sql"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def time_review(paths: list[Path], dialect: str, sizes: SizesFile) -> tuple[float, int]:
    start = time.perf_counter()
    sources = [(p.name, p.read_text()) for p in paths]
    report = review_texts(sources, ReviewSettings(dialect), sizes)
    return time.perf_counter() - start, len(report.findings)


def time_squawk(paths: list[Path]) -> float | None:
    exe = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(exe).exists():
        return None
    start = time.perf_counter()
    # squawk exits non-zero when it reports violations; only the time matters here
    subprocess.run([exe, *map(str, paths)], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    sizes = SizesFile(data={"tables": {"users": {"rows": 5_000_000, "bytes": 3 << 30},
                                       "orders": {"rows": 200_000, "bytes": 50 << 20}}})
    with tempfile.TemporaryDirectory() as tmp:
        for dialect, templates in (("mysql", MYSQL), ("postgres", POSTGRES)):
            paths = make_files(Path(tmp) / dialect, templates, args.files, seed=11)
            # warm the parsers' imports and caches outside the timing
            review_texts([("warm.sql", paths[0].read_text())], ReviewSettings(dialect), sizes)
            seconds, findings = time_review(paths, dialect, sizes)
            print(f"{dialect:9s} {len(paths)} files, {findings} findings in {seconds:.2f} s "
                  f"= {len(paths) / seconds:,.0f} files/s "
                  f"({'within' if seconds <= 2 else 'OVER'} the 2 s goal)")
            if dialect == "postgres":
                squawk = time_squawk(paths)
                if squawk is None:
                    print("squawk: not installed (pip install squawk-cli) — no ratio")
                else:
                    print(f"squawk    {len(paths)} files in {squawk:.2f} s = "
                          f"{len(paths) / squawk:,.0f} files/s; greenlight/squawk time ratio "
                          f"{seconds / squawk:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

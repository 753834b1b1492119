"""Calibrate schema review's time estimates on the real servers here and write the constants.

For PostgreSQL and MariaDB, a table of ROWS rows (bigint id, two short strings, a timestamp, an
int: about 80 bytes a row) is built, then each kind of heavy work the rules name is timed:
PostgreSQL rewrite (ALTER COLUMN TYPE), index build (CREATE INDEX), validation scan (ADD CHECK);
MariaDB copy (ALGORITHM=COPY), rebuild (FORCE, in place), index build (ADD INDEX, in place).
A sample read (the first SAMPLE rows) is timed too, so a review with --db-url can scale the
constants by how fast the target database reads compared with this machine.  The result goes
to schema_review/costs.py (a module, so it installs with the package) with the hardware, server
versions, date and load it ran on.

    .venv/bin/python bench/schema_costs.py [--rows 300000] [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import pprint
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
COSTS = Path(__file__).resolve().parent.parent / "schema_review" / "costs.py"
HEADER = '''"""Per-row costs of heavy schema changes, measured on real servers by bench/schema_costs.py
(generated: rerun the bench with --write on the hardware you deploy to, do not edit by hand)."""
'''
SAMPLE = 50_000


def timed(conn, sql: str) -> float:
    start = time.perf_counter()
    conn.execute(sa.text(sql))
    return time.perf_counter() - start


def postgres(rows: int) -> dict:
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    t = f"cal_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        version = conn.execute(sa.text("SHOW server_version")).scalar()
        try:
            conn.execute(sa.text(f"CREATE TABLE {t} (id bigint PRIMARY KEY, name varchar(40), "
                                 "email text, created timestamptz, n integer)"))
            conn.execute(sa.text(
                f"INSERT INTO {t} SELECT g, 'user ' || g, 'u' || g || '@example.com', "
                f"now() - g * interval '1 second', g % 1000 FROM generate_series(1, {rows}) g"))
            conn.execute(sa.text(f"VACUUM ANALYZE {t}"))
            size = conn.execute(sa.text(f"SELECT pg_total_relation_size('{t}')")).scalar()
            sample = timed(conn, f"SELECT count(*) FROM (SELECT * FROM {t} LIMIT {SAMPLE}) s")
            costs = {
                "index-build": timed(conn, f"CREATE INDEX {t}_email ON {t} (email)"),
                "scan": timed(conn, f"ALTER TABLE {t} ADD CONSTRAINT {t}_c CHECK (n >= 0)"),
                "rewrite": timed(conn, f"ALTER TABLE {t} ALTER COLUMN n TYPE bigint"),
            }
        finally:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
    engine.dispose()
    return {"version": version, "rows": rows, "bytes": size,
            "seconds_per_million_rows": {k: round(v * 1e6 / rows, 3) for k, v in costs.items()},
            "sample_rows_per_second": round(SAMPLE / sample)}


def mariadb(rows: int) -> dict:
    engine = sa.create_engine(MARIADB_URL, isolation_level="AUTOCOMMIT")
    t = f"cal_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version()")).scalar()
        try:
            conn.execute(sa.text(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(40), "
                                 "email VARCHAR(80), created DATETIME, n INT) ENGINE=InnoDB"))
            conn.execute(sa.text(
                f"INSERT INTO {t} SELECT seq, CONCAT('user ', seq), CONCAT('u', seq, "
                f"'@example.com'), NOW() - INTERVAL seq SECOND, seq % 1000 FROM "
                f"seq_1_to_{rows}"))
            conn.execute(sa.text(f"ANALYZE TABLE {t}"))
            size = conn.execute(sa.text(
                "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES WHERE "
                "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": t}).scalar()
            sample = timed(conn, f"SELECT count(*) FROM (SELECT * FROM {t} LIMIT {SAMPLE}) s")
            costs = {
                "nocopy": timed(conn, f"ALTER TABLE {t} ADD INDEX ie (email), "
                                      "ALGORITHM=INPLACE"),
                "rebuild": timed(conn, f"ALTER TABLE {t} FORCE, ALGORITHM=INPLACE"),
                "copy": timed(conn, f"ALTER TABLE {t} MODIFY n BIGINT, ALGORITHM=COPY"),
            }
        finally:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
    engine.dispose()
    return {"version": version, "rows": rows, "bytes": int(size or 0),
            "seconds_per_million_rows": {k: round(v * 1e6 / rows, 3) for k, v in costs.items()},
            "sample_rows_per_second": round(SAMPLE / sample)}


def hardware() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(int(line.split()[1]) // 1024 for line in
                      Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    except OSError:
        memory = None
    return {"cpu": model, "cores": os.cpu_count(), "memory_mib": memory,
            "machine": platform.machine(), "kernel": platform.release()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--write", action="store_true", help=f"write {COSTS}")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "load": " ".join(load), "hardware": hardware(),
              "command": f"bench/schema_costs.py --rows {args.rows}",
              "postgres": postgres(args.rows), "mariadb": mariadb(args.rows)}
    print(json.dumps(result, indent=2))
    if args.write:
        COSTS.write_text(HEADER + "\nCOSTS = " + pprint.pformat(result, width=96,
                                                              sort_dicts=False) + "\n")
        print(f"wrote {COSTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Apply the SQL migrations of ``db/migrations`` that the database has not seen, in name order,
each in its own transaction. Greenlight runs it once per deploy, before any host switches
(``[deploy] migrate_command``, cwd = an export of the commit being deployed).

    python deploy/migrate.py --db postgresql+psycopg2://app@db/lending
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

MIGRATIONS = Path("db/migrations")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the database")
    args = parser.parse_args()
    engine = create_engine(args.db)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS schema_migrations "
                          "(version text PRIMARY KEY)"))
        done = {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.stem in done:
            continue
        with engine.begin() as conn:
            conn.exec_driver_sql(path.read_text())
            conn.execute(text("INSERT INTO schema_migrations VALUES (:v)"), {"v": path.stem})
        print(f"applied {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

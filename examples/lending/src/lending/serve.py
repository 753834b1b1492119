"""Serve the app: ``python -m lending.serve --host 127.0.0.1 --port 8080``."""
from __future__ import annotations

import argparse

from werkzeug.serving import run_simple

from lending.web import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    run_simple(args.host, args.port, create_app(), threaded=True)


if __name__ == "__main__":
    main()

"""``greenlight up`` / ``greenlight down``: start or stop the whole demo world."""
from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    for verb, help_text in (("up", "start master, workers, demo repo and hosts; print where to "
                                   "push and which URL to open"),
                            ("down", "stop everything `up` started")):
        parser = subparsers.add_parser(verb, help=help_text, description=help_text)
        parser.add_argument("--settings", help="settings TOML (default: $GREENLIGHT_SETTINGS "
                                               "or the embedded demo defaults)")
        parser.set_defaults(func=_run_up if verb == "up" else _run_down)


def _run_up(args: argparse.Namespace) -> int:
    from greenlight_master import lifecycle

    from greenlight import settings

    lifecycle.up(settings.load(args.settings))
    return 0


def _run_down(args: argparse.Namespace) -> int:
    from greenlight_master import lifecycle

    from greenlight import settings

    lifecycle.down(settings.load(args.settings))
    return 0

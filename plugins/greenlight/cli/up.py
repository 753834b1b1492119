"""``greenlight up`` / ``greenlight down``: start or stop the whole demo world."""
from __future__ import annotations

import argparse
import os

from greenlight import settings


def add_parser(subparsers) -> None:
    for verb, help_text in (("up", "start master, workers, demo repo and hosts; print where to "
                                   "push and which URL to open"),
                            ("down", "stop everything `up` started")):
        parser = subparsers.add_parser(verb, help=help_text, description=help_text)
        parser.add_argument("--settings", help="settings TOML (default: $GREENLIGHT_SETTINGS, "
                                               "else the file the running master was started "
                                               "with, else the embedded demo defaults)")
        parser.set_defaults(func=_run_up if verb == "up" else _run_down)


def _run_up(args: argparse.Namespace) -> int:
    from greenlight_master import lifecycle

    loaded = settings.load(args.settings)
    lifecycle.up(loaded)
    # A file named on the command line becomes the one every later verb reads (a shell's
    # $GREENLIGHT_SETTINGS already tells them); a bare `up` runs the embedded defaults.
    if args.settings:
        settings.remember_active(args.settings)
    elif not os.environ.get("GREENLIGHT_SETTINGS"):
        settings.forget_active()
    return 0


def _run_down(args: argparse.Namespace) -> int:
    from greenlight_master import lifecycle

    loaded = settings.load(args.settings)
    lifecycle.down(loaded)
    if settings.active_path() and loaded.source == str(settings.active_path()):
        settings.forget_active()
    return 0

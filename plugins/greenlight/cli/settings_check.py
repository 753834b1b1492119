"""``greenlight settings check FILE`` and ``greenlight settings show``: the settings as Greenlight
reads them, so a mistake is found before the master starts."""
from __future__ import annotations

import argparse
import json
import sys

from greenlight import settings
from greenlight.deploy.hosts import DeploySettings
from greenlight.errors import SettingsError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "settings", help="check a settings file, or show the settings that apply",
        description="check: print every problem of FILE (file:line) and exit 2, or the "
                    "resolved settings. show: which file applies and its resolved settings.")
    verbs = parser.add_subparsers(dest="settings_verb", metavar="check|show", required=True)
    check = verbs.add_parser("check", help="validate a settings file")
    check.add_argument("file", help="the settings TOML to check")
    check.set_defaults(func=_check)
    show = verbs.add_parser("show", help="the settings every verb reads now, and from where")
    show.add_argument("--settings", help="a settings TOML instead of the one that applies")
    show.set_defaults(func=_show)


def _print_resolved(data: dict, source: str) -> None:
    print(json.dumps({"source": source, "settings": data}, indent=2, sort_keys=True,
                     default=str))


def _check(args: argparse.Namespace) -> int:
    raw, text = settings.read(args.file)
    data, found = settings.problems(raw, args.file, text)
    if not found:  # sections their engines parse (file:line errors of their own)
        try:
            DeploySettings.from_section(settings.Settings(data, args.file, text))
        except SettingsError as exc:
            found = [str(exc)]
    if found:
        for problem in found:
            print(problem, file=sys.stderr)
        print(f"{len(found)} problem(s) in {args.file}", file=sys.stderr)
        return 2
    _print_resolved(data, args.file)
    return 0


def _show(args: argparse.Namespace) -> int:
    loaded = settings.load(args.settings)
    _print_resolved(loaded.as_dict(), loaded.source)
    return 0

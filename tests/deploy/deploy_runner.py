"""Runs one deploy in its own process so a test can SIGKILL it at a chosen point.

``python -m tests.deploy.deploy_runner SETTINGS.json SHA JUDGE_OUTCOME...``
"""
from __future__ import annotations

import json
import sys

from greenlight.deploy.hosts import DeploySettings, Host
from greenlight.deploy.ledger import Ledger
from greenlight.deploy.phases import Deployer

from .conftest import ScriptedJudge


def main(argv: list[str]) -> int:
    spec = json.loads(open(argv[0]).read())
    spec["hosts"] = [Host(**{**h, "restart": tuple(h["restart"])}) for h in spec["hosts"]]
    settings = DeploySettings(**spec)
    judge = ScriptedJudge(*argv[2:]) if argv[2:] else None
    deployer = Deployer(settings, Ledger(settings.ledger_url),
                        (lambda: judge) if judge else None)
    result = deployer.deploy(argv[1], trigger="runner")
    print(result.outcome, result.message)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

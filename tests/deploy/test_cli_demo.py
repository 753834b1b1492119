"""The CLI end to end on the real demo app with the real judge and demo traffic: a commit that
breaks logins reaches the canary and is rolled back by the breakage path within seconds."""
from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

from greenlight.cli.main import main
from greenlight.deploy import demo_hosts as demo
from greenlight.deploy.ledger import Ledger
from greenlight.deploy.traffic import generate_traffic

from .conftest import ROOT_DIR, free_ports

DEMO = ROOT_DIR / "examples" / "demo"


def write_settings(tmp_path: Path, repo_path: Path, ports: list[int]) -> Path:
    hosts = "".join(f'''
[[deploy.hosts]]
name = "web{i + 1}"
transport = "local"
path = "{tmp_path / f"web{i + 1}"}"
port = {port}
restart = ["{{python}}", "-m", "greenlight.deploy.demo_hosts", "restart", "{{path}}",
           "--port", "{{port}}"]
''' for i, port in enumerate(ports))
    path = tmp_path / "settings.toml"
    path.write_text(f'''
[greenlight]
state_dir = "{tmp_path / "state"}"

[repository]
url = "{repo_path}"
deploy_branch = "main"

[deploy]
canary_fraction = 0.5
observe_seconds = 30
keep_releases = 3
{hosts}''')
    return path


def test_cli_deploy_breakage_rolled_back_then_rollback_and_listing(tmp_path, make_repo, capsys):
    repo = make_repo("demo")
    shutil.copytree(DEMO, repo.path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    v1 = repo.commit("demo v1")
    ports = free_ports(2)
    settings = str(write_settings(tmp_path, repo.path, ports))
    stop = threading.Event()
    traffic = threading.Thread(target=generate_traffic, daemon=True, kwargs=dict(
        urls=[f"http://127.0.0.1:{p}" for p in ports], rate=60, duration_s=120,
        max_requests=20_000, seed=7, timeout=1.0, stop=stop))
    try:
        assert main(["deploy", v1, "--settings", settings, "--trigger", "test"]) == 0
        assert "success:" in capsys.readouterr().out
        traffic.start()

        logic = repo.path / "app" / "logic.py"
        logic.write_text(logic.read_text().replace(
            "    def login(self, user: str) -> str:\n",
            "    def login(self, user: str) -> str:\n        raise UnknownUser(user)\n", 1))
        v2 = repo.commit("refactor login (breaks it)")
        code = main(["deploy", v2, "--settings", settings, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 1 and out["outcome"] == "rolled_back", out["message"]
        judge = next(p for p in out["phases"] if p["name"] == "judge")
        assert "logins per request" in judge["log"]
        assert judge["finished_at"] - judge["started_at"] < 20  # the breakage fast path
        for i in (1, 2):
            assert demo.served_release(tmp_path / f"web{i}") == v1

        ledger = Ledger(f"sqlite:///{tmp_path / 'state'}/ledger.sqlite")
        assert ledger.is_bad(v2)
        [incident] = ledger.incidents()
        assert incident.sha == v2 and "logins per request" in incident.data["table"]
        assert "logins per request" in incident.data["failing"]
        assert incident.data["previous_sha"] == v1

        assert main(["releases", "--settings", settings, "--json"]) == 0
        state = json.loads(capsys.readouterr().out)
        assert state["hosts"]["web1"]["current"] == v1 and v2 in state["bad"]
        assert main(["deploys", "list", "--settings", settings]) == 0
        listing = capsys.readouterr().out.splitlines()
        assert "rolled_back" in listing[0] and "success" in listing[1]
        assert main(["deploys", "show", str(out["deploy_id"]), "--settings", settings]) == 0
        assert "judge" in capsys.readouterr().out
        # no earlier good release than v1 to roll back to: a clear message, exit 2
        assert main(["rollback", "--settings", settings]) == 2
        assert "no earlier good release" in capsys.readouterr().err
    finally:
        stop.set()
        traffic.join(10)
        for i in (1, 2):
            demo.stop_host(tmp_path / f"web{i}")

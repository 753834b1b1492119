"""``[deploy] enabled = false`` turns off everything deploy-related: no deploy or rollback
builder, no deploy step in the verify build, no demo hosts started by ``up``."""
from __future__ import annotations

from greenlight import settings
from greenlight_master import builders, config, demo_world


def _load(tmp_path, deploy: str) -> settings.Settings:
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n\n[deploy]\n{deploy}\n')
    return settings.load(path)


def _shape(loaded: settings.Settings) -> dict:
    c = config.build_config(loaded)
    verify = next(b for b in c["builders"] if b.name == builders.VERIFY)
    return {"builders": sorted(b.name for b in c["builders"]),
            "schedulers": sorted(s.name for s in c["schedulers"]),
            "verify_steps": [s.kwargs.get("name") for s in verify.factory.steps]}


def test_deploys_off_leave_no_deploy_builder_step_or_scheduler(tmp_path):
    on, off = (_shape(_load(tmp_path, f"enabled = {v}")) for v in ("true", "false"))
    assert {"deploy", "rollback"} <= set(on["builders"]) and "deploy" in on["verify_steps"]
    assert not {"deploy", "rollback"} & set(off["builders"])
    assert "deploy" not in off["verify_steps"]
    assert not [s for s in off["schedulers"] if "deploy" in s or "rollback" in s]
    assert set(off["builders"]) == set(on["builders"]) - {"deploy", "rollback"}


def test_deploys_off_start_no_demo_hosts(tmp_path):
    class Report:
        lines: list[str] = []

        def say(self, text: str) -> None:
            self.lines.append(text)

    loaded = _load(tmp_path, "enabled = false\ndemo_hosts = 3")
    assert demo_world.up(loaded, Report()) == []
    assert not demo_world.hosts_dir(loaded).exists()

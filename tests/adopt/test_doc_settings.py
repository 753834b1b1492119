"""The settings file docs/adopt.md tells a team to start from is one the master accepts: the
central schema, the deploy engine's hosts and the judge's metrics, and Buildbot's config."""
from __future__ import annotations

import re

from greenlight import settings
from greenlight.deploy.hosts import DeploySettings
from greenlight_master import builders, config

from tests.conftest import ROOT


def test_the_documents_settings_file_builds_a_master_config(tmp_path):
    text = (ROOT / "docs" / "adopt.md").read_text()
    block = re.search(r"## 2\. The settings file.*?```toml\n(.*?)```", text, re.S).group(1)
    # Only where it writes moves to the test's directory.
    block = block.replace('"/var/lib/greenlight', f'"{tmp_path}')
    path = tmp_path / "greenlight.toml"
    path.write_text(block)
    loaded = settings.load(path)
    deploy = DeploySettings.from_section(loaded)
    assert [(h.name, h.transport, h.health_url) for h in deploy.hosts] == [
        ("web1", "ssh", "http://10.0.0.11:8080/healthz"),
        ("web2", "ssh", "http://10.0.0.12:8080/healthz")]
    c = config.build_config(loaded)
    names = {b.name for b in c["builders"]}
    assert {builders.VERIFY, "deploy", "rollback"} <= names
    verify = next(b for b in c["builders"] if b.name == builders.VERIFY)
    setup = next(s for s in verify.factory.steps if s.kwargs.get("name") == "setup")
    assert setup.kwargs["command"][-3:] == ["--editable", "--group", "test"]

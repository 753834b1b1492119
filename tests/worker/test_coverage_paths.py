"""The start-up check that a project's coverage data combines across checkouts (shards)."""
from __future__ import annotations

import pytest

from greenlight import settings
from greenlight.errors import SettingsError
from greenlight.worker.coverage_paths import mapping_problem
from greenlight_master import lifecycle

from tests.conftest import git

RELATIVE = "[tool.coverage.run]\nrelative_files = true\n"


@pytest.mark.parametrize("files, ok", [
    ({"pyproject.toml": RELATIVE}, True),
    ({".coveragerc": "[run]\nrelative_files = True\n"}, True),
    ({"setup.cfg": "[coverage:paths]\nsource =\n    src/\n    */build/src/\n"}, True),
    ({"pyproject.toml": "[tool.coverage.run]\nbranch = true\n"}, False),
    ({"pyproject.toml": "[project]\nname = 'x'\n"}, False),
    ({}, False),
    # coverage reads the first file that has its settings: .coveragerc hides pyproject's
    ({".coveragerc": "[run]\nbranch = True\n", "pyproject.toml": RELATIVE}, False),
])
def test_mapping_is_read_as_coverage_reads_it(files, ok):
    problem = mapping_problem(files, "auto")
    assert (problem is None) is ok
    if not ok:
        assert "[tool.coverage.run]\nrelative_files = true" in problem
        assert '[shards] count = "auto"' in problem


def _settings(tmp_path, url, shards: str) -> settings.Settings:
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n'
                    f'[repository]\nurl = "{url}"\n[workers]\ncount = 2\n'
                    f"[shards]\ncount = {shards}\n")
    return settings.load(path)


def test_up_stops_when_shards_may_run_on_a_project_without_the_mapping(make_repo, tmp_path):
    work = make_repo("app")
    work.write("pyproject.toml", "[tool.coverage.run]\nbranch = true\n")
    work.commit("app")
    bare = tmp_path / "app.git"
    git(tmp_path, "clone", "-q", "--bare", str(work.path), str(bare))
    report = lifecycle.Report()
    with pytest.raises(SettingsError, match=r"(?s)greenlight.toml: \[shards\]: .*"
                                            r"\(pyproject.toml\).*relative_files = true"):
        lifecycle.check_coverage_paths(_settings(tmp_path, bare, "2"), report)
    lifecycle.check_coverage_paths(_settings(tmp_path, bare, "1"), report)  # no shards: fine
    # "auto" with local workers only never fans out: nothing to combine either
    lifecycle.check_coverage_paths(_settings(tmp_path, bare, '"auto"'), report)
    work.write("pyproject.toml", RELATIVE)
    work.commit("coverage: paths relative to the checkout")
    git(work.path, "push", "-q", str(bare), "main")
    lifecycle.check_coverage_paths(_settings(tmp_path, bare, "2"), report)
    assert report.lines == []


def test_a_repository_it_cannot_read_is_reported_not_refused(tmp_path):
    report = lifecycle.Report()
    lifecycle.check_coverage_paths(_settings(tmp_path, "https://git.example.com/a.git", "2"),
                                   report)
    assert "coverage paths not checked" in report.lines[0]

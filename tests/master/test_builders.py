"""The verify factory from the settings: coverage added to every supported shape of test
command (a start-up error naming the shapes otherwise), and red builds still reaching the
coverage step."""
from __future__ import annotations

import pytest
from greenlight import settings
from greenlight.errors import SettingsError
from greenlight.steps.coverage_gate import CoverageGate
from greenlight.steps.tests import RunTests

from greenlight_master import builders


def load(tmp_path, verify: str) -> settings.Settings:
    path = tmp_path / "greenlight.toml"
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n\n[workers]\ncount = 1\n\n'
                    f"[verify]\n{verify}\n")
    return settings.load(path)


@pytest.mark.parametrize("command,measured", [
    (["python", "-m", "pytest", "-q"], ["python", "-m", "coverage", "run", "-m", "pytest", "-q"]),
    ([".venv/bin/pytest", "-x"], [".venv/bin/python", "-m", "coverage", "run", "-m", "pytest",
                                  "-x"]),
    (["pytest"], ["python", "-m", "coverage", "run", "-m", "pytest"]),
    (["python3", "-m", "coverage", "run", "-m", "pytest"],
     ["python3", "-m", "coverage", "run", "-m", "pytest"]),
    (["/opt/venv/bin/coverage", "run", "-m", "pytest"],
     ["/opt/venv/bin/coverage", "run", "-m", "pytest"]),
])
def test_coverage_is_added_to_every_supported_shape(tmp_path, command, measured):
    loaded = load(tmp_path, f"test_command = {command!r}".replace("'", '"'))
    assert builders.Build(loaded, "repo").test_command == measured


def test_an_unsupported_test_command_stops_the_master_naming_the_shapes(tmp_path):
    loaded = load(tmp_path, 'test_command = ["make", "check"]')
    with pytest.raises(SettingsError) as err:
        builders.verify_factory(loaded, "repo")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'greenlight.toml'}: [verify] test_command:")
    assert "['make', 'check']" in message
    for shape in builders.COVERAGE_SHAPES:
        assert shape in message
    assert "[coverage] enabled = false" in message


def test_failing_tests_do_not_halt_before_the_coverage_report(tmp_path):
    loaded = load(tmp_path, 'test_command = ["python", "-m", "pytest"]')
    steps = builders.verify_factory(loaded, "repo").steps
    classes = [s.step_class for s in steps]
    tests = steps[classes.index(RunTests)]
    assert tests.kwargs["haltOnFailure"] is False
    assert classes.index(CoverageGate) > classes.index(RunTests)


def test_every_factory_is_its_named_step_list(tmp_path):
    loaded = load(tmp_path, 'test_command = ["python", "-m", "pytest"]')
    for names in (builders.VERIFY_STEPS, builders.SHARDED_VERIFY_STEPS, builders.SHARD_STEPS):
        assert set(names) <= set(builders.MAKERS)
    with pytest.raises(KeyError, match="no such step"):
        builders.factory_of(("checkout", "no such step"), builders.Build(loaded, "repo"))

"""The worker's cached venv: recipes from requirements files and pyproject tables, refusals
that name what the project has, and one real build (pip from this machine's index)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from greenlight.errors import UsageError
from greenlight.worker import venv

PYPROJECT = """\
[project]
name = "tiny-app"
version = "0.1.0"
dependencies = ["iniconfig"]

[project.optional-dependencies]
test = ["pluggy", "tiny_app[speed]"]
speed = ["packaging"]

[dependency-groups]
dev = ["pluggy"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/tiny_app"]
"""


def _project(path: Path, pyproject: str = PYPROJECT) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(pyproject)
    (path / "src" / "tiny_app").mkdir(parents=True)
    (path / "src" / "tiny_app" / "__init__.py").write_text("WHERE = __file__\n")
    return path


def test_extras_expand_the_projects_references_to_itself(tmp_path):
    project = _project(tmp_path / "p")
    recipe = venv.Recipe(project, extras=("test",))
    data = venv.check(recipe)
    assert venv.pip_arguments(recipe, data) == ["iniconfig", "pluggy", "packaging"]


def test_one_pip_run_combines_files_groups_and_the_editable_project(tmp_path):
    project = _project(tmp_path / "p")
    (project / "requirements.txt").write_text("iniconfig\n")
    recipe = venv.Recipe(project, requirements=("requirements.txt",), extras=("test",),
                         groups=("dev",), editable=True)
    assert venv.pip_arguments(recipe, venv.check(recipe)) == [
        "-r", "requirements.txt", "-e", ".[test]", "--group", "dev"]


def test_missing_requirements_file_names_what_the_project_has_and_the_fix(tmp_path):
    project = _project(tmp_path / "p")
    with pytest.raises(UsageError) as caught:
        venv.check(venv.Recipe(project, requirements=("requirements.txt",)))
    text = str(caught.value)
    assert "requirements file requirements.txt not found" in text
    assert "extras speed, test" in text and "dependency groups dev" in text
    assert ('setup_command = ["{python}", "-m", "greenlight.worker.venv", "--cache", '
            '"{state_dir}/worker-venvs", "--link", ".venv", "--editable", "--extras", "test", '
            '"--group", "dev"]') in text


@pytest.mark.parametrize("recipe, message", [
    (dict(extras=("docs",)), "extra 'docs' is not in [project.optional-dependencies]"),
    (dict(groups=("lint",)), "dependency group 'lint' is not in [dependency-groups]"),
    (dict(), "nothing to install"),
])
def test_a_recipe_naming_what_the_project_lacks_is_refused(tmp_path, recipe, message):
    project = _project(tmp_path / "p")
    with pytest.raises(UsageError, match="in " + str(project)) as caught:
        venv.check(venv.Recipe(project, **recipe))
    assert message in str(caught.value)


def test_dynamic_dependencies_need_the_editable_install(tmp_path):
    project = _project(tmp_path / "p", '[project]\nname = "x"\nversion = "1"\n'
                                       'dynamic = ["dependencies"]\n')
    with pytest.raises(UsageError, match="dynamic .* use --editable"):
        venv.check(venv.Recipe(project, project_deps=True))


def test_no_pyproject_and_no_requirements_is_an_error_not_an_empty_venv(tmp_path):
    project = tmp_path / "bare"
    project.mkdir()
    proc = subprocess.run([sys.executable, "-m", "greenlight.worker.venv", "--requirements",
                           "requirements.txt", "--cache", str(tmp_path / "cache")],
                          cwd=project, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "requirements file requirements.txt not found" in proc.stderr
    assert not (tmp_path / "cache").exists()


def test_key_follows_the_pyproject_and_the_checkout_only_when_editable(tmp_path):
    one, two = _project(tmp_path / "one"), _project(tmp_path / "two")
    deps = [venv.Recipe(p, extras=("test",)) for p in (one, two)]
    assert venv.cache_key(deps[0]) == venv.cache_key(deps[1])
    editable = [venv.Recipe(p, editable=True) for p in (one, two)]
    assert venv.cache_key(editable[0]) != venv.cache_key(editable[1])
    before = venv.cache_key(deps[0])
    (one / "pyproject.toml").write_text(PYPROJECT.replace('"packaging"', '"packaging>=20"'))
    assert venv.cache_key(deps[0]) != before


def _venvs(cache: Path) -> list[Path]:
    """The ready venvs of a cache (not its installer)."""
    return [p for p in cache.glob("*/.ready") if p.parent.name != venv.INSTALLER]


def test_real_build_groups_extras_editable_then_cached(tmp_path):
    project = _project(tmp_path / "checkout")
    cache = tmp_path / "cache"
    argv = ["--cache", str(cache), "--extras", "test", "--group", "dev", "--editable",
            "--project", str(project), "--link", str(project / ".venv")]
    assert venv.main(argv) == 0
    python = project / ".venv" / "bin" / "python"
    probe = "import tiny_app, iniconfig, pluggy, packaging; print(tiny_app.WHERE)"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout.split()
    assert out[0] == str(project.resolve() / "src" / "tiny_app" / "__init__.py")
    # The next build of the same checkout: no pip run, and a code change is seen at once.
    [ready] = _venvs(cache)
    stamp = ready.stat().st_mtime_ns
    (project / "src" / "tiny_app" / "__init__.py").write_text("WHERE = 'changed'\n")
    assert venv.main(argv) == 0
    assert ready.stat().st_mtime_ns == stamp and _venvs(cache) == [ready]
    out = subprocess.run([str(python), "-c", "import tiny_app; print(tiny_app.WHERE)"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.strip() == "changed"

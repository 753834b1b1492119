"""Set up the target repository's virtualenv on a worker, cached by what goes into it.

Building a venv from the package index on every push would dominate push-to-verdict time, so
the venv lives in a cache keyed by its recipe (requirements files, the project's pyproject
tables, the options, the Python version), is built once under an exclusive lock (two workers
may ask at once), and is linked into the build directory. Projects declare their dependencies
in several ways; each has an option, and several combine into one pip run:

    python -m greenlight.worker.venv --cache DIR --link .venv \\
        [--requirements requirements.txt ...]   # pip -r, each file must exist
        [--project-deps]                        # [project] dependencies of ./pyproject.toml
        [--extras test,docs]                    # + [project.optional-dependencies] (implies
                                                #   --project-deps)
        [--group test ...]                      # [dependency-groups] (PEP 735)
        [--editable]                            # the project itself, `pip install -e .[extras]`

An editable install points at one checkout, so with ``--editable`` the key also holds the
checkout's path: each worker's build directory gets its own cached venv, and the builds after
the first find the code they checked out through it. A recipe naming a file or table the
project does not have is an error (exit 2) saying what the project does have, never an empty
venv whose tests then fail on a missing import.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from greenlight.errors import UsageError

# ``pip install --group`` exists from pip 25.1; Python 3.11's bundled pip is 23.2. One pip of
# that version per cache installs into every venv (``pip --python``), so a new venv costs no
# ensurepip (seconds) and has no pip of its own.
INSTALLER_PIP = "pip>=25.1"
INSTALLER = ".installer"


@dataclass(frozen=True)
class Recipe:
    """What the venv is built from; ``project`` is the checkout the paths are relative to."""

    project: Path
    requirements: tuple[str, ...] = ()
    project_deps: bool = False
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    editable: bool = False

    @property
    def uses_pyproject(self) -> bool:
        return bool(self.project_deps or self.extras or self.groups or self.editable)


def _normalize(name: str) -> str:
    """PEP 503/685 name normalisation (extras and dependency groups compare this way)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pyproject(project: Path) -> dict:
    path = project / "pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None


def describe(project: Path) -> str:
    """What the project declares (for error messages): its files and pyproject tables."""
    found = [name for name in ("requirements.txt", "requirements-dev.txt", "requirements",
                               "setup.py", "pyproject.toml") if (project / name).exists()]
    data = read_pyproject(project)
    parts = [f"files: {', '.join(found) or 'none of requirements*.txt, setup.py, pyproject.toml'}"]
    if "dependencies" in data.get("project", {}):
        parts.append("[project] dependencies")
    extras = sorted(data.get("project", {}).get("optional-dependencies", {}))
    if extras:
        parts.append(f"extras {', '.join(extras)}")
    groups = sorted(data.get("dependency-groups", {}))
    if groups:
        parts.append(f"dependency groups {', '.join(groups)}")
    return "; ".join(parts)


def suggested_setup(project: Path) -> list[str] | None:
    """A ``[verify] setup_command`` for what the project declares, or None when it declares
    nothing this tool reads."""
    data = read_pyproject(project)
    args = ["{python}", "-m", "greenlight.worker.venv", "--cache", "{state_dir}/worker-venvs",
            "--link", ".venv"]
    for name in ("requirements.txt", "requirements-dev.txt"):
        if (project / name).is_file():
            args += ["--requirements", name]
    table = data.get("project", {})
    extras = [e for e in table.get("optional-dependencies", {})
              if _normalize(e) in {"test", "tests", "testing", "dev"}]
    if data.get("build-system") or (project / "setup.py").exists():
        args.append("--editable")
    elif "dependencies" in table:
        args.append("--project-deps")
    if extras:
        args += ["--extras", ",".join(extras)]
    for group in data.get("dependency-groups", {}):
        if _normalize(group) in {"test", "tests", "testing", "dev"}:
            args += ["--group", group]
    return args if len(args) > 7 else None


def _missing(recipe: Recipe, what: str) -> UsageError:
    text = f"{what} (in {recipe.project.resolve()}); the project has {describe(recipe.project)}"
    fix = suggested_setup(recipe.project)
    if fix:
        text += f"\nset in the settings file:\n[verify]\nsetup_command = {json.dumps(fix)}"
    return UsageError(text)


def check(recipe: Recipe) -> dict:
    """Refuse a recipe naming something the project lacks; return its pyproject data."""
    if not (recipe.requirements or recipe.uses_pyproject):
        raise _missing(recipe, "nothing to install: give --requirements, --project-deps, "
                               "--extras, --group or --editable")
    for name in recipe.requirements:
        if not (recipe.project / name).is_file():
            raise _missing(recipe, f"requirements file {name} not found")
    data = read_pyproject(recipe.project)
    if not recipe.uses_pyproject:
        return data
    if not data and not (recipe.editable and (recipe.project / "setup.py").exists()):
        raise _missing(recipe, "pyproject.toml not found")
    table = data.get("project", {})
    if (recipe.project_deps or recipe.extras) and not recipe.editable:
        if not table:
            raise _missing(recipe, "pyproject.toml has no [project] table")
        dynamic = set(table.get("dynamic", []))
        if "dependencies" in dynamic or (recipe.extras and "optional-dependencies" in dynamic):
            raise _missing(recipe, "the project's dependencies are dynamic (computed by its "
                                   "build backend): use --editable to let pip build them")
    known = {_normalize(e) for e in table.get("optional-dependencies", {})}
    for extra in recipe.extras:
        if _normalize(extra) not in known and "optional-dependencies" not in set(
                table.get("dynamic", [])):
            raise _missing(recipe, f"extra {extra!r} is not in "
                                   "[project.optional-dependencies]")
    groups = {_normalize(g) for g in data.get("dependency-groups", {})}
    for group in recipe.groups:
        if _normalize(group) not in groups:
            raise _missing(recipe, f"dependency group {group!r} is not in [dependency-groups]")
    if recipe.editable and not (data.get("build-system") or table
                                or (recipe.project / "setup.py").exists()):
        raise _missing(recipe, "--editable needs a [build-system] or [project] table or a "
                               "setup.py")
    return data


def project_requirements(data: dict, extras: tuple[str, ...]) -> list[str]:
    """``[project] dependencies`` plus the given extras' requirement strings, with the
    project's references to its own extras (``name[other]``) expanded in place."""
    table = data.get("project", {})
    own = _normalize(table.get("name", ""))
    optional = {_normalize(k): v for k, v in table.get("optional-dependencies", {}).items()}
    out: list[str] = []
    seen: set[str] = set()

    def add(lines: list[str]) -> None:
        for line in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                raise UsageError(f"pyproject.toml: requirement {line!r}: {exc}") from None
            if own and _normalize(req.name) == own:
                for extra in sorted(req.extras):
                    add_extra(extra)
            elif line not in out:
                out.append(line)

    def add_extra(extra: str) -> None:
        key = _normalize(extra)
        if key not in seen:
            seen.add(key)
            add(optional.get(key, []))

    add(table.get("dependencies", []))
    for extra in extras:
        add_extra(extra)
    return out


def pip_arguments(recipe: Recipe, data: dict) -> list[str]:
    """The arguments of the one ``pip install`` that builds the venv (cwd = the project)."""
    args: list[str] = []
    for name in recipe.requirements:
        args += ["-r", name]
    if recipe.editable:
        extras = f"[{','.join(recipe.extras)}]" if recipe.extras else ""
        args += ["-e", f".{extras}"]
    elif recipe.project_deps or recipe.extras:
        args += project_requirements(data, recipe.extras)
    for group in recipe.groups:
        args += ["--group", group]
    return args


def cache_key(recipe: Recipe) -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    options = {"requirements": recipe.requirements, "project_deps": recipe.project_deps,
               "extras": sorted(recipe.extras), "groups": sorted(recipe.groups),
               "editable": recipe.editable}
    digest.update(json.dumps(options, sort_keys=True).encode())
    for name in recipe.requirements:
        digest.update(b"\0" + (recipe.project / name).read_bytes())
    if recipe.uses_pyproject:
        for name in ("pyproject.toml", "setup.py", "setup.cfg"):
            path = recipe.project / name
            digest.update(b"\0" + (path.read_bytes() if path.exists() else b""))
    if recipe.editable:
        digest.update(str(recipe.project.resolve()).encode())
    return digest.hexdigest()[:16]


def _pip(pip_python: Path, target: Path, args: list[str], cwd: Path) -> None:
    subprocess.run([str(pip_python), "-m", "pip", "--python", str(target), "install", "-q",
                    "--disable-pip-version-check", *args], check=True, cwd=cwd)


def ensure_installer(cache: Path) -> Path:
    """The cache's own pip (>= 25.1), installed once by the worker's pip; its python."""
    target = cache / INSTALLER
    python = target / "bin" / "python"
    with open(cache / f"{INSTALLER}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".ready").exists():
            shutil.rmtree(target, ignore_errors=True)
            venv.EnvBuilder(with_pip=False, clear=True).create(target)
            _pip(Path(sys.executable), python, [INSTALLER_PIP], cache)
            (target / ".ready").touch()
    return python


def ensure_venv(recipe: Recipe, cache: Path) -> Path:
    """Return a ready venv for ``recipe``, building it once under a lock."""
    data = check(recipe)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / cache_key(recipe)
    ready = target / ".ready"
    if ready.exists():
        return target
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        installer = ensure_installer(cache)
        venv.EnvBuilder(with_pip=False, clear=True).create(target)
        _pip(installer, target / "bin" / "python", pip_arguments(recipe, data), recipe.project)
        ready.write_text(json.dumps({"recipe": pip_arguments(recipe, data),
                                     "project": str(recipe.project.resolve())}) + "\n")
    return target


def link(target: Path, name: Path) -> None:
    """Point ``name`` at ``target`` atomically (replace an older link)."""
    tmp = name.with_name(f".{name.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    if name.exists() and not name.is_symlink():
        shutil.rmtree(name)
    os.replace(tmp, name)


def _names(values: list[str]) -> tuple[str, ...]:
    return tuple(n.strip() for value in values for n in value.split(",") if n.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", "-r", action="append", default=[],
                        help="a requirements file (repeatable); it must exist")
    parser.add_argument("--project-deps", action="store_true",
                        help="[project] dependencies of pyproject.toml")
    parser.add_argument("--extras", action="append", default=[],
                        help="extras of [project.optional-dependencies], comma-separated")
    parser.add_argument("--group", action="append", default=[],
                        help="a [dependency-groups] group (repeatable)")
    parser.add_argument("--editable", action="store_true",
                        help="install the project itself (pip install -e .)")
    parser.add_argument("--project", default=".", type=Path,
                        help="the checkout (default: the current directory)")
    parser.add_argument("--cache", required=True, type=Path)
    parser.add_argument("--link", default=".venv", type=Path)
    args = parser.parse_args(argv)
    recipe = Recipe(project=args.project, requirements=tuple(args.requirements),
                    project_deps=args.project_deps, extras=_names(args.extras),
                    groups=_names(args.group), editable=args.editable)
    try:
        target = ensure_venv(recipe, args.cache)
    except UsageError as exc:
        print(f"greenlight.worker.venv: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"pip install {' '.join(exc.cmd[8:])} failed (exit {exc.returncode})",
              file=sys.stderr)
        return 1
    link(target, args.link)
    print(f"venv {target} linked as {args.link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

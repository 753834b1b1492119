"""The build factories: what a verify build does, step by step, from the settings.

Each factory is a named list of steps (``VERIFY_STEPS`` ...); each name has one maker in
``MAKERS`` that builds its step(s) from the settings. Every step class is imported at the top
of this module, so a step that cannot be imported stops the master at start with the import
error: a gate is never dropped in silence. A maker returns no step only when the settings
switch that capability off (``[schema] enabled = false``, ``[coverage] enabled = false``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from functools import cached_property
from typing import Callable

from buildbot.plugins import steps, util
from buildbot.process.properties import renderer
from greenlight.errors import SettingsError
from greenlight.settings import Settings
from greenlight.steps.base import RecordGreen, ResolveBase
from greenlight.steps.coverage_gate import CoverageGate, GatedTests
from greenlight.steps.schema_review import SchemaReview
from greenlight.steps.shards import (
    FAN_OUT_PROPERTY,
    CollectShards,
    FetchShardCoverage,
    PlanShards,
    TriggerShards,
    fans_out,
    runs_here,
    shard_builder_steps,
    skipped,
)
from greenlight.steps.tests import RunTests

VERIFY = "verify"
SHARD = "shard"
SHARD_SCHEDULER = "shards"

# The verify build on one worker: the tests run under the coverage gate, which prepares its
# analysis of the changed code while they run and writes its reports the moment they end.
VERIFY_STEPS = ("checkout", "resolve base", "schema review", "setup", "tests", "coverage",
                "record green")
# The verify build fanned out to shard builds: plan, trigger, collect one verdict, combine the
# shards' coverage, gate. With ``[shards] count = "auto"`` the plan may decide the suite is too
# short to fan out: the guarded "tests here" step then runs it as VERIFY_STEPS does.
SHARDED_VERIFY_STEPS = ("checkout", "resolve base", "schema review", "setup", "plan shards",
                        "trigger shards", "collect shards", "tests here",
                        "fetch shard coverage", "combine coverage", "coverage", "record green")
# One shard build: the pytest plugin shipped from the master, so the target's venv needs no
# Greenlight.
SHARD_STEPS = ("checkout", "setup", "shard tests")


@dataclass
class Build:
    """What the makers read: the settings and, for a fanned-out verify build, its shape."""

    settings: Settings
    repo_url: str
    shards: int = 0
    min_suite_seconds: float | None = None

    @property
    def measure(self) -> bool:
        return bool(self.settings["coverage"]["enabled"])

    @property
    def fail_under(self) -> float:
        return float(self.settings["coverage"]["fail_under"])

    @cached_property
    def test_command(self) -> list[str]:
        """The test command, measured by coverage when the gate is on."""
        command = [self.settings.expand(a) for a in self.settings["verify"]["test_command"]]
        return under_coverage(command, self.settings) if self.measure else command

    @cached_property
    def gated_tests(self) -> GatedTests | None:
        return GatedTests(self.test_command, fail_under=self.fail_under) if self.measure \
            else None

    @property
    def guard(self) -> dict:
        """doStepIf/hideStepIf of the steps that run only when the plan fans out (``auto``)."""
        if self.min_suite_seconds is None:
            return {}
        return {"doStepIf": fans_out, "hideStepIf": skipped}

    @property
    def green_file(self) -> str:
        return str(self.settings.state_dir / "green-shas.json")


COVERAGE_SHAPES = ("PYTHON -m pytest ...", "PATH/bin/pytest ... (its python beside it)",
                   "pytest ... (the python on the worker's PATH)",
                   "PYTHON -m coverage run ... or coverage run ... (already measured)")


def under_coverage(command: list[str], settings: Settings) -> list[str]:
    """The test command run by coverage (xdist workers are measured through the target's
    ``[tool.coverage.run] patch = ["subprocess"]``). A shape not listed in COVERAGE_SHAPES is
    a settings error at start: the gate would otherwise find no data after every build."""
    program = PurePosixPath(command[0]).name if command else ""
    if len(command) >= 3 and command[1] == "-m" and command[2] == "coverage" \
            or program == "coverage":
        return command
    if len(command) >= 3 and command[1] == "-m" and command[2] == "pytest":
        return [command[0], "-m", "coverage", "run", "-m", *command[2:]]
    if program in ("pytest", "py.test"):
        parent = PurePosixPath(command[0]).parent
        python = str(parent / "python") if str(parent) != "." else "python"
        return [python, "-m", "coverage", "run", "-m", "pytest", *command[1:]]
    raise SettingsError(
        f"{settings.source}: [verify] test_command: cannot add coverage to {command!r}; "
        f"use one of: {'; '.join(COVERAGE_SHAPES)} (or [coverage] enabled = false)")


def _checkout(b: Build) -> list:
    return [steps.Git(repourl=b.repo_url, mode="full", method="clobber", name="checkout",
                      haltOnFailure=True, logEnviron=False)]


def _resolve_base(b: Build) -> list:
    return [ResolveBase(green_file=b.green_file, haltOnFailure=True)]


def _schema_review(b: Build) -> list:
    schema = b.settings["schema"]
    if not schema["enabled"]:
        return []
    return [SchemaReview(
        migrations_dir=schema["migrations_dir"], dialect=schema["dialect"],
        sizes=schema["sizes_file"], approvals_url=b.settings.expand(schema["approvals_url"]),
        db_url=schema["db_url"] or None, server_version=schema["server_version"] or None,
        large_rows=schema["large_rows"], large_bytes=schema["large_bytes"],
        haltOnFailure=True)]


def _setup(b: Build) -> list:
    verify = b.settings["verify"]
    if not verify["setup_command"]:
        return []
    return [steps.ShellCommand(name="setup",
                               command=[b.settings.expand(a) for a in verify["setup_command"]],
                               haltOnFailure=True, logEnviron=False, timeout=verify["timeout"])]


def _run_tests(b: Build, **kwargs) -> RunTests:
    """Failing tests fail the build but do not halt it: the coverage step after them still
    shows the report the gate wrote when they ended (red builds have one too)."""
    verify = b.settings["verify"]
    return RunTests(command=b.gated_tests or b.test_command, junit_file=verify["junit_file"],
                    timeout=verify["timeout"], haltOnFailure=False, **kwargs)


def _tests(b: Build) -> list:
    return [_run_tests(b)]


def _tests_here(b: Build) -> list:
    """The one-worker test step, run only when an ``auto`` plan keeps the tests here; it
    records their durations for the next build's decision."""
    if b.min_suite_seconds is None:
        return []
    return [_run_tests(b, durations_db=b.settings.expand(b.settings["shards"]["durations_url"]),
                       doStepIf=runs_here, hideStepIf=skipped)]


def _coverage(b: Build) -> list:
    if not b.measure:
        return []
    report = b.gated_tests.output
    if b.shards:
        # A fanned-out build has no report of its own tests: the gate runs on the shards' data.
        report = _when_run_here(report) if b.min_suite_seconds is not None else None
    return [CoverageGate(fail_under=b.fail_under, tests_report=report)]


def _when_run_here(path: str):
    """The report the test step's gate wrote, for a build that ran its tests itself."""
    return renderer(lambda props: None if props.getProperty(FAN_OUT_PROPERTY) is not False
                    else path)


def _record_green(b: Build) -> list:
    return [RecordGreen(green_file=b.green_file)]


def _plan_shards(b: Build) -> list:
    python = b.settings.expand(b.settings["verify"]["test_command"][0])
    shards = b.settings["shards"]
    return [PlanShards(
        shards=b.shards, durations_db=b.settings.expand(shards["durations_url"]),
        haltOnFailure=True, group_by_module=shards["group_by_module"],
        min_suite_seconds=b.min_suite_seconds,
        collect_command=[python, "-m", "pytest", "--collect-only", "-q", "-p",
                         "no:cacheprovider"])]


def _trigger_shards(b: Build) -> list:
    return [TriggerShards(schedulerName=SHARD_SCHEDULER, **b.guard)]


def _collect_shards(b: Build) -> list:
    shards = b.settings["shards"]
    return [CollectShards(reports_dir=shard_reports_dir(b.settings),
                          durations_db=b.settings.expand(shards["durations_url"]),
                          alwaysRun=True, haltOnFailure=False,
                          fail_on_flaky=shards["flaky_fails_build"], **b.guard)]


def _fetch_shard_coverage(b: Build) -> list:
    if not b.measure:
        return []
    return [FetchShardCoverage(reports_dir=shard_reports_dir(b.settings), **b.guard)]


def _combine_coverage(b: Build) -> list:
    if not b.measure:
        return []
    return [steps.ShellCommand(name="combine coverage",
                               command=[b.test_command[0], "-m", "coverage", "combine"],
                               logEnviron=False, flunkOnFailure=False, warnOnFailure=True,
                               **b.guard)]


def _shard_tests(b: Build) -> list:
    return list(shard_builder_steps(b.test_command, shard_reports_dir(b.settings),
                                    coverage_python=b.test_command[0] if b.measure else None))


MAKERS: dict[str, Callable[[Build], list]] = {
    "checkout": _checkout,
    "resolve base": _resolve_base,
    "schema review": _schema_review,
    "setup": _setup,
    "tests": _tests,
    "tests here": _tests_here,
    "coverage": _coverage,
    "record green": _record_green,
    "plan shards": _plan_shards,
    "trigger shards": _trigger_shards,
    "collect shards": _collect_shards,
    "fetch shard coverage": _fetch_shard_coverage,
    "combine coverage": _combine_coverage,
    "shard tests": _shard_tests,
}


def factory_of(names: tuple[str, ...], build: Build) -> util.BuildFactory:
    """A factory with the steps named, in order (an unknown name is a KeyError at start)."""
    factory = util.BuildFactory()
    for name in names:
        for step in MAKERS[name](build):
            factory.addStep(step)
    return factory


def verify_factory(settings: Settings, repo_url: str) -> util.BuildFactory:
    return factory_of(VERIFY_STEPS, Build(settings, repo_url))


def shard_reports_dir(settings: Settings) -> str:
    """Where shard builds upload their reports and coverage on the master."""
    return str(settings.state_dir / "shards")


def shard_factory(settings: Settings, repo_url: str) -> util.BuildFactory:
    return factory_of(SHARD_STEPS, Build(settings, repo_url))


def verify_factory_sharded(settings: Settings, repo_url: str, count: int,
                           min_suite_seconds: float | None = None) -> util.BuildFactory:
    """The verify build with its tests fanned out to ``count`` shards. With
    ``min_suite_seconds`` (``[shards] count = "auto"``) both paths are in the factory, each
    step guarded by the plan's ``shard_fan_out`` property; the path not taken is hidden."""
    return factory_of(SHARDED_VERIFY_STEPS,
                      Build(settings, repo_url, shards=count,
                            min_suite_seconds=min_suite_seconds))

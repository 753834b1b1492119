"""The build factories: what a verify build does, step by step, from the settings."""
from __future__ import annotations

import importlib

from buildbot.plugins import steps, util
from greenlight.settings import Settings
from greenlight.steps.base import RecordGreen, ResolveBase
from greenlight.steps.tests import RunTests

VERIFY = "verify"


def _optional_step(module: str, name: str):
    """An engine's step class, or None while that engine is not part of this checkout."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def verify_factory(settings: Settings, repo_url: str) -> util.BuildFactory:
    verify = settings["verify"]
    factory = util.BuildFactory()
    factory.addStep(steps.Git(repourl=repo_url, mode="full", method="clobber",
                              name="checkout", haltOnFailure=True, logEnviron=False))
    green_file = str(settings.state_dir / "green-shas.json")
    factory.addStep(ResolveBase(green_file=green_file, haltOnFailure=True))
    schema_step = _optional_step("greenlight.steps.schema_review", "SchemaReview")
    if settings["schema"]["enabled"] and schema_step is not None:
        schema = settings["schema"]
        factory.addStep(schema_step(
            migrations_dir=schema["migrations_dir"], dialect=schema["dialect"],
            sizes=schema["sizes_file"], approvals_url=settings.expand(schema["approvals_url"]),
            db_url=schema["db_url"] or None, server_version=schema["server_version"] or None,
            large_rows=schema["large_rows"], large_bytes=schema["large_bytes"],
            haltOnFailure=True))
    if verify["setup_command"]:
        factory.addStep(steps.ShellCommand(
            name="setup", command=[settings.expand(a) for a in verify["setup_command"]],
            haltOnFailure=True, logEnviron=False, timeout=verify["timeout"]))
    test_command = [settings.expand(a) for a in verify["test_command"]]
    coverage_step = _optional_step("greenlight.steps.coverage_gate", "CoverageGate")
    measure = settings["coverage"]["enabled"] and coverage_step is not None
    if measure:
        test_command = _under_coverage(test_command)
    # The tests run under the gate: it prepares its analysis of the changed code while they
    # run and writes its reports the moment they end; the coverage step reads them.
    gated = _optional_step("greenlight.steps.coverage_gate", "GatedTests")
    fail_under = float(settings["coverage"]["fail_under"])
    run_tests = gated(test_command, fail_under=fail_under) \
        if measure and gated is not None else None
    factory.addStep(RunTests(command=run_tests or test_command, junit_file=verify["junit_file"],
                             timeout=verify["timeout"], haltOnFailure=True))
    if measure:
        factory.addStep(coverage_step(fail_under=fail_under,
                                      tests_report=run_tests.output if run_tests else None))
    factory.addStep(RecordGreen(green_file=green_file))
    return factory


def _under_coverage(command: list[str]) -> list[str]:
    """``python -m pytest ...`` → ``python -m coverage run -m pytest ...`` (xdist workers are
    measured through the target's ``[tool.coverage.run] patch = ["subprocess"]``)."""
    if len(command) >= 3 and command[1] == "-m":
        return [command[0], "-m", "coverage", "run", "-m", *command[2:]]
    return command


# --- shard fan-out (issue 5): the verify build spread over the shard builder --------------------
SHARD = "shard"
SHARD_SCHEDULER = "shards"


def shard_reports_dir(settings: Settings) -> str:
    """Where shard builds upload their reports and coverage on the master."""
    return str(settings.state_dir / "shards")


def shard_factory(settings: Settings, repo_url: str) -> util.BuildFactory:
    """One shard build: checkout, setup, then the shard steps (the pytest plugin shipped from
    the master, run, rerun failures alone, upload): the target's venv needs no Greenlight."""
    from greenlight.steps.shards import shard_builder_steps

    verify = settings["verify"]
    factory = util.BuildFactory()
    factory.addStep(steps.Git(repourl=repo_url, mode="full", method="clobber",
                              name="checkout", haltOnFailure=True, logEnviron=False))
    if verify["setup_command"]:
        factory.addStep(steps.ShellCommand(
            name="setup", command=[settings.expand(a) for a in verify["setup_command"]],
            haltOnFailure=True, logEnviron=False, timeout=verify["timeout"]))
    test_command = [settings.expand(a) for a in verify["test_command"]]
    measure = (settings["coverage"]["enabled"]
               and _optional_step("greenlight.steps.coverage_gate", "CoverageGate") is not None)
    if measure:
        test_command = _under_coverage(test_command)
    for step in shard_builder_steps(test_command, shard_reports_dir(settings),
                                    coverage_python=test_command[0] if measure else None):
        factory.addStep(step)
    return factory


def verify_factory_sharded(settings: Settings, repo_url: str, count: int,
                           min_suite_seconds: float | None = None) -> util.BuildFactory:
    """The verify build with its tests fanned out to ``count`` shards: checkout, base, schema
    review, setup, then plan → trigger the shard builds → one verdict → their coverage
    combined → the gate.

    With ``min_suite_seconds`` (``[shards] count = "auto"``) the plan step decides per build
    whether the suite is long enough to fan out; when it is not, the build runs the tests
    itself exactly as the one-worker build does (under the coverage gate's ``--run``) and
    records their durations for the next decision. Both paths are in the factory, each
    step guarded by the plan's ``shard_fan_out`` property; the path not taken is hidden."""
    from greenlight.steps.shards import (
        CollectShards,
        FetchShardCoverage,
        PlanShards,
        TriggerShards,
        fans_out,
        runs_here,
        skipped,
    )

    shards = settings["shards"]
    durations = settings.expand(shards["durations_url"])
    reports = shard_reports_dir(settings)
    full = verify_factory(settings, repo_url)
    factory = util.BuildFactory()
    # Keep the plain build's steps up to (not including) its test run.
    for step in full.steps:
        if step.step_class is RunTests:
            run_tests = step
            break
        factory.addStep(step)
    test_command = [settings.expand(a) for a in settings["verify"]["test_command"]]
    python = test_command[0]
    may_run_here = min_suite_seconds is not None
    factory.addStep(PlanShards(
        shards=count, durations_db=durations, haltOnFailure=True,
        group_by_module=shards["group_by_module"], min_suite_seconds=min_suite_seconds,
        collect_command=[python, "-m", "pytest", "--collect-only", "-q", "-p",
                         "no:cacheprovider"]))
    guard = {"doStepIf": fans_out, "hideStepIf": skipped} if may_run_here else {}
    factory.addStep(TriggerShards(schedulerName=SHARD_SCHEDULER, **guard))
    factory.addStep(CollectShards(reports_dir=reports, durations_db=durations, alwaysRun=True,
                                  haltOnFailure=True,
                                  fail_on_flaky=shards["flaky_fails_build"], **guard))
    tests_report = None
    if may_run_here:
        # The one-worker build's own test step (the tests under the gate), guarded.
        kwargs = dict(run_tests.kwargs)
        tests_report = getattr(kwargs["command"], "output", None)
        factory.addStep(RunTests(**{**kwargs, "durations_db": durations,
                                    "doStepIf": runs_here, "hideStepIf": skipped}))
    coverage_step = _optional_step("greenlight.steps.coverage_gate", "CoverageGate")
    if settings["coverage"]["enabled"] and coverage_step is not None:
        # Shards' data only: the gate the tests ran under already combined a local run's.
        factory.addStep(FetchShardCoverage(reports_dir=reports, **guard))
        factory.addStep(steps.ShellCommand(
            name="combine coverage", command=[python, "-m", "coverage", "combine"],
            logEnviron=False, flunkOnFailure=False, warnOnFailure=True, **guard))
        factory.addStep(coverage_step(
            fail_under=float(settings["coverage"]["fail_under"]),
            tests_report=_when_run_here(tests_report) if tests_report else None))
    factory.addStep(RecordGreen(green_file=str(settings.state_dir / "green-shas.json")))
    return factory


def _when_run_here(path: str):
    """The report the test step's gate wrote, for a build that ran its tests itself; a
    fanned-out build has none and the coverage step runs the gate on the shards' data."""
    from buildbot.process.properties import renderer
    from greenlight.steps.shards import FAN_OUT_PROPERTY

    return renderer(lambda props: None if props.getProperty(FAN_OUT_PROPERTY) is not False
                    else path)

"""The build factories: what a verify build does, step by step, from the settings."""
from __future__ import annotations

import importlib

from buildbot.plugins import steps, util

from greenlight.steps.base import RecordGreen, ResolveBase
from greenlight.steps.tests import RunTests
from greenlight_master.settings import Settings

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
    factory.addStep(RunTests(command=test_command, junit_file=verify["junit_file"],
                             timeout=verify["timeout"], haltOnFailure=True))
    if measure:
        python = test_command[0]
        factory.addStep(steps.ShellCommand(
            name="combine coverage", command=[python, "-m", "coverage", "combine"],
            logEnviron=False, flunkOnFailure=False, warnOnFailure=True))
        factory.addStep(coverage_step(fail_under=float(settings["coverage"]["fail_under"])))
    factory.addStep(RecordGreen(green_file=green_file))
    return factory


def _under_coverage(command: list[str]) -> list[str]:
    """``python -m pytest ...`` → ``python -m coverage run -m pytest ...`` (xdist workers are
    measured through the target's ``[tool.coverage.run] patch = ["subprocess"]``)."""
    if len(command) >= 3 and command[1] == "-m":
        return [command[0], "-m", "coverage", "run", "-m", *command[2:]]
    return command

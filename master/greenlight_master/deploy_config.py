"""The deploy side of the master: every green commit of the deploy branch goes live.

A green verify build of ``[repository] deploy_branch`` triggers the ``deploy`` builder; its
build runs ``greenlight deploy`` (canary, judge, the rest; each phase a step of its own) and
then ``greenlight incident rollbacks`` so a judge rollback opens its incident report at once.
Deploys and rollbacks are one at a time (a master lock, plus the engine's own flock), and when
several green commits wait only the newest deploys: it contains the others. Forcing a deploy
or a rollback needs the ``deployers`` role (see auth.make_authz).
"""
from __future__ import annotations

import sys
from pathlib import Path

from buildbot.plugins import schedulers, steps, util
from greenlight.deploy.hosts import DeploySettings
from greenlight.settings import Settings
from greenlight.steps.base import is_green
from greenlight.steps.deploy import Deploy, Rollback
from twisted.internet import defer

from greenlight_master import builders, config

DEPLOY = "deploy"
ROLLBACK = "rollback"
TRIGGER = "deploy-trigger"
FORCE_DEPLOY = "force-deploy"
FORCE_ROLLBACK = "force-rollback"
DEPLOY_BUILDERS = (DEPLOY, ROLLBACK)
STEP_TIMEOUT = 3600  # seconds without output: the engine prints one line per phase


def greenlight_command() -> list[str]:
    """The ``greenlight`` console script of the master's own environment (workers of the demo
    run on this machine); plain ``greenlight`` from PATH when it is not installed beside it."""
    script = Path(sys.executable).parent / "greenlight"
    return [str(script)] if script.exists() else ["greenlight"]


def settings_file(settings: Settings) -> str | None:
    """The settings file the master was started with, so the worker's CLI reads the same."""
    if settings.source == "<defaults>":
        return None
    return str(Path(settings.source).resolve())


def deploy_wanted(settings: Settings, deploy: DeploySettings):
    """doStepIf of the verify build's trigger: green, on the deploy branch, deploys enabled
    and somewhere to deploy to (settings with no hosts and ``demo_hosts = 0`` deploy nothing)."""
    branch = settings["repository"]["deploy_branch"]
    enabled = deploy.enabled and bool(deploy.hosts)

    def wanted(step) -> bool:
        return (enabled and is_green(step.build.results, step.getProperty("shards_result"))
                and step.getProperty("branch") == branch)

    return wanted


@defer.inlineCallbacks
def newest_wins(master, builder, new_request, old_request):
    """Collapse an older waiting deploy request into a newer one of the same branch.

    Buildbot's default collapse (``collapseRequests=True``) only merges requests of the same
    revision or with changes attached; triggered deploys carry neither, so each green commit
    would deploy in turn. The newer request contains the older commits: skip the older one.
    """
    if new_request["buildrequestid"] <= old_request["buildrequestid"]:
        return False
    new_set = yield master.data.get(("buildsets", str(new_request["buildsetid"])))
    old_set = yield master.data.get(("buildsets", str(old_request["buildsetid"])))
    new_branches = {ss["codebase"]: ss["branch"] for ss in new_set["sourcestamps"]}
    old_branches = {ss["codebase"]: ss["branch"] for ss in old_set["sourcestamps"]}
    return new_branches == old_branches


def deploy_factory(settings: Settings) -> util.BuildFactory:
    factory = util.BuildFactory()
    factory.addStep(Deploy(settings=settings_file(settings), revision=util.Property("revision"),
                           greenlight=greenlight_command(), timeout=STEP_TIMEOUT,
                           haltOnFailure=False, flunkOnFailure=True))
    factory.addStep(_incident_step(settings))
    return factory


def rollback_factory(settings: Settings) -> util.BuildFactory:
    factory = util.BuildFactory()
    factory.addStep(Rollback(settings=settings_file(settings),
                             revision=util.Property("revision"),
                             greenlight=greenlight_command(), timeout=STEP_TIMEOUT))
    return factory


def _incident_step(settings: Settings) -> steps.ShellCommand:
    """Reports for the judge's open rollback requests (idempotent: none open, nothing done)."""
    command = [*greenlight_command(), "incident", "rollbacks",
               "--repo", settings.repo_url,
               "--ledger", DeploySettings.from_section(settings).ledger_url]
    env = {"GREENLIGHT_SETTINGS": settings_file(settings)} if settings_file(settings) else {}
    return steps.ShellCommand(name="incident report", command=command, env=env,
                              descriptionDone=["incident reports of judge rollbacks"],
                              alwaysRun=True, flunkOnFailure=False, warnOnFailure=True,
                              logEnviron=False, timeout=600)


def _codebase(settings: Settings, revision_label: str, required: bool):
    return [util.CodebaseParameter(
        "", branch=util.FixedParameter(name="branch",
                                       default=settings["repository"]["deploy_branch"]),
        revision=util.StringParameter(name="revision", label=revision_label, default="",
                                      required=required, regex=r"^[0-9a-fA-F]{0,40}$"),
        repository=util.FixedParameter(name="repository", default=settings.repo_url),
        project=util.FixedParameter(name="project", default=""))]


def configure(settings: Settings, c: dict) -> None:
    # the engine parses [deploy] now, so a wrong host table or judge key stops the master at
    # start (file:line, key, what was expected), not the first deploy
    deploy = DeploySettings.from_section(settings)
    if not deploy.enabled:
        return  # the one switch: no deploy or rollback builder, no deploy step, no demo hosts
    names = config.worker_names(settings)
    lock = util.MasterLock("deploy")
    c["builders"].append(util.BuilderConfig(
        name=DEPLOY, workernames=names, factory=deploy_factory(settings),
        collapseRequests=newest_wins, locks=[lock.access("exclusive")],
        description="Canary, judge, the rest: every green commit of the deploy branch"))
    c["builders"].append(util.BuilderConfig(
        name=ROLLBACK, workernames=names, factory=rollback_factory(settings),
        collapseRequests=False, locks=[lock.access("exclusive")],
        description="Every host back on an earlier good release"))
    c["schedulers"].append(schedulers.Triggerable(name=TRIGGER, builderNames=[DEPLOY]))
    c["schedulers"].append(schedulers.ForceScheduler(
        name=FORCE_DEPLOY, builderNames=[DEPLOY], buttonName="Deploy",
        label="Deploy a commit (deployers only)",
        codebases=_codebase(settings, "Commit sha to deploy", required=True)))
    c["schedulers"].append(schedulers.ForceScheduler(
        name=FORCE_ROLLBACK, builderNames=[ROLLBACK], buttonName="Roll back",
        label="Roll back (deployers only)",
        codebases=_codebase(settings, "Roll back to (empty: the previous good release)",
                            required=False)))
    verify = next(b for b in c["builders"] if b.name == builders.VERIFY)
    verify.factory.addStep(steps.Trigger(
        name="deploy", schedulerNames=[TRIGGER], waitForFinish=False, updateSourceStamp=True,
        doStepIf=deploy_wanted(settings, deploy),
        set_properties={"greenlight_verify_build": util.Interpolate(
            "%(prop:buildername)s/%(prop:buildnumber)s")}))

"""Build Buildbot's ``BuildmasterConfig`` dictionary from Greenlight's settings."""
from __future__ import annotations

from buildbot.plugins import schedulers, util, worker
from greenlight.settings import Settings
from greenlight.www.change_hook import GreenlightHookHandler
from greenlight.www.dashboard import dashboard_config
from twisted.cred import checkers

from greenlight_master import auth, builders
from greenlight_master.secrets_store import read_or_create


def worker_names(settings: Settings) -> list[str]:
    prefix = settings["workers"]["name_prefix"]
    return [f"{prefix}-{i}" for i in range(1, settings["workers"]["count"] + 1)]


def worker_password(settings: Settings) -> str:
    return read_or_create(settings.state_dir / "worker.secret")


def change_hook_password(settings: Settings) -> str:
    return read_or_create(settings.path("change_hook", "password_file"))


def _db_url(settings: Settings) -> str:
    return settings.expand(settings["master"]["db_url"])


def _extensions():
    """Capabilities that add builders, schedulers or services to the master, each a module of
    greenlight_master exposing ``configure(settings, c)``, in the order they apply. Imported
    here, not at the top: they wire onto the verify builder this module defines (and import
    it back)."""
    from greenlight_master import deploy_config, experiments_config, shards_config

    return (shards_config, deploy_config, experiments_config)


def build_config(settings: Settings) -> dict:
    url = settings.repo_url
    names = worker_names(settings)
    branches = settings["repository"]["branches"]
    c: dict = {}
    c["buildbotNetUsageData"] = None
    c["title"] = settings["greenlight"]["title"]
    c["titleURL"] = settings.web_url
    c["buildbotURL"] = settings.web_url
    c["db"] = {"db_url": _db_url(settings)}
    port = settings["master"]["worker_port"]
    c["protocols"] = {"pb": {"port": f"tcp:{port}:interface=127.0.0.1"}}
    password = worker_password(settings)
    c["workers"] = [worker.Worker(name, password, max_builds=1) for name in names]
    c["change_source"] = []
    if settings["repository"]["poll_interval"]:
        from buildbot.plugins import changes

        c["change_source"].append(changes.GitPoller(
            repourl=url, branches=branches, pollInterval=settings["repository"]["poll_interval"],
            workdir=str(settings.state_dir / "gitpoller")))
    c["schedulers"] = [
        schedulers.AnyBranchScheduler(
            name="on-push", builderNames=[builders.VERIFY], treeStableTimer=None,
            change_filter=util.ChangeFilter(branch=branches)),
        schedulers.ForceScheduler(
            name="force-verify", builderNames=[builders.VERIFY],
            codebases=[util.CodebaseParameter(
                "", branch=util.StringParameter(name="branch", default=branches[0]),
                revision=util.FixedParameter(name="revision", default=""),
                repository=util.FixedParameter(name="repository", default=url),
                project=util.FixedParameter(name="project", default=""))]),
    ]
    c["builders"] = [
        util.BuilderConfig(name=builders.VERIFY, workernames=names,
                           factory=builders.verify_factory(settings, url),
                           collapseRequests=settings["verify"]["collapse"]),
    ]
    c["services"] = []
    for extension in _extensions():
        extension.configure(settings, c)
    roles = settings["auth"]["roles"]
    c["www"] = {
        "port": f"tcp:{settings['master']['web_port']}:interface=127.0.0.1",
        "plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {},
                    "wsgi_dashboards": dashboard_config(settings)},
        "auth": auth.PasswordFileAuth(settings.path("auth", "password_file")),
        "authz": auth.make_authz(roles),
        "change_hook_dialects": {"greenlight": {"custom_class": GreenlightHookHandler}},
        "change_hook_auth": [checkers.InMemoryUsernamePasswordDatabaseDontUse(
            **{settings["change_hook"]["username"]: change_hook_password(settings).encode()})],
    }
    return c

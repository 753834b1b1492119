"""Build Buildbot's ``BuildmasterConfig`` dictionary from Greenlight's settings."""
from __future__ import annotations

from buildbot.plugins import reporters, schedulers, util
from greenlight.errors import SettingsError
from greenlight.settings import Settings
from greenlight.www.change_hook import GreenlightHookHandler
from greenlight.www.dashboard import dashboard_config
from twisted.cred import checkers

from greenlight_master import auth, builders, workers_config
from greenlight_master.secrets_store import change_hook_password


def worker_names(settings: Settings) -> list[str]:
    """The workers of the deploy builders: the local ones ``up`` starts, beside the master's
    state and ledger; with no local worker (``count = 0``), every worker."""
    return workers_config.local_worker_names(settings) or \
        workers_config.all_worker_names(settings)


def _db_url(settings: Settings) -> str:
    return settings.expand(settings["master"]["db_url"])


def _extensions():
    """Capabilities that add builders, schedulers or services to the master, each a module of
    greenlight_master exposing ``configure(settings, c)``, in the order they apply. Imported
    here, not at the top: they wire onto the verify builder this module defines (and import
    it back)."""
    from greenlight_master import deploy_config, experiments_config, shards_config

    return (shards_config, deploy_config, experiments_config)


def status_reporters(settings: Settings) -> list:
    """Commit statuses reported back to the forge (``[webhooks] status_forge`` with a token)."""
    hooks = settings["webhooks"]
    if not hooks["status_forge"]:
        return []
    if not hooks["status_token_file"]:
        raise SettingsError(f"{settings.source}: [webhooks] status_token_file: needed when "
                            f"status_forge = {hooks['status_forge']!r}")
    path = settings.path("webhooks", "status_token_file")
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{settings.source}: [webhooks] status_token_file: cannot read "
                            f"{path}: {exc.strerror}") from None
    options = {"baseURL": hooks["status_base_url"]} if hooks["status_base_url"] else {}
    push = reporters.GitHubStatusPush if hooks["status_forge"] == "github" \
        else reporters.GitLabStatusPush
    return [push(token=token, context=util.Interpolate("greenlight/%(prop:buildername)s"),
                 **options)]


def build_config(settings: Settings) -> dict:
    url = settings.repo_url
    names = workers_config.all_worker_names(settings)
    branches = settings["repository"]["branches"]
    c: dict = {}
    c["buildbotNetUsageData"] = None
    c["title"] = settings["greenlight"]["title"]
    c["titleURL"] = settings.web_url
    c["buildbotURL"] = settings.web_url
    c["db"] = {"db_url": _db_url(settings)}
    c["protocols"] = {"pb": {"port": workers_config.pb_port(settings)}}
    c["workers"] = workers_config.workers(settings)
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
    c["services"] += status_reporters(settings)
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

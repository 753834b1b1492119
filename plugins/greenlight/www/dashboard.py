"""Greenlight's pages inside the Buildbot web UI (a Buildbot WSGI dashboard, Flask).

Each capability contributes a Flask blueprint (``schema``, ``experiments``, ``incidents``,
``deploys``, ``flaky``); this module builds the app, the shared layout and the security hooks.
Served at ``/plugins/wsgi_dashboards/greenlight/``.
"""
from __future__ import annotations

import html
import importlib
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, render_template, request

from greenlight.www.security import Guard

MOUNT = "/plugins/wsgi_dashboards/greenlight"
# (page module, menu label), in menu order. Each module exposes ``blueprint``; they are
# imported when the app is made (they import this module's layout helpers back), and one
# that fails to import stops the master with its error.
PAGES = (
    ("greenlight.www.schema_page", "Schema review"),
    ("greenlight.www.deploys_page", "Deploys"),
    ("greenlight.www.trending_page", "Trending"),
    ("greenlight.www.incidents_page", "Incidents"),
    ("greenlight.www.experiments_page", "Experiments"),
    ("greenlight.www.flaky_page", "Flaky tests"),
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top;text-align:left}th{background:#f3f3f3}pre{background:#f7f7f7;padding:.5em;
overflow:auto}nav a{margin-right:1em}.bad{background:#fdd}.ok{background:#dfd}.warn{background:#ffd}
"""


def layout(title: str, body: str) -> str:
    """A complete page; ``title`` is escaped here, ``body`` must already be safe HTML."""
    user = g.get("user")
    who = html.escape(user.name) if user and user.name else "anonymous (log in to act)"
    nav = "".join(f'<a href="{MOUNT}/{html.escape(p.name)}/">{html.escape(label)}</a>'
                  for p, label in g.get("pages", []))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<style>{STYLE}</style>{render_template('greenlight/page_style.html')}</head>"
            f"<body><nav><a href='/' target='_top'>Buildbot</a>{nav}"
            f"<span style='float:right'>{who}</span></nav><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")


def csrf_field() -> str:
    return f'<input type="hidden" name="csrf" value="{html.escape(g.csrf)}">'


def require_role(*roles: str) -> None:
    """Abort with 401 for anonymous users and 403 for users with none of ``roles``."""
    user = g.user
    if user.anonymous:
        abort(401, "log in first")
    if not any(user.has(role) for role in roles):
        abort(403, f"needs the role {' or '.join(roles)}")


def make_app(settings: Any, session_secret=None) -> Flask:
    """The Flask app; ``settings`` is Greenlight's Settings (engines read their sections)."""
    from greenlight.www import webhooks  # its views use this module's helpers

    app = Flask("greenlight.www")
    app.config["GREENLIGHT_SETTINGS"] = settings
    guard = Guard(roles_by_user=settings["auth"]["roles"],
                  password_file=settings.path("auth", "password_file"),
                  session_secret=session_secret or (lambda: _buildbot_secret(app)))
    app.config["GREENLIGHT_GUARD"] = guard
    pages = []
    for module_name, label in PAGES:
        blueprint = importlib.import_module(module_name).blueprint
        app.register_blueprint(blueprint, url_prefix=f"/{blueprint.name}")
        pages.append((blueprint, label))
    app.register_blueprint(webhooks.blueprint, url_prefix="/webhooks")

    @app.before_request
    def identify() -> None:
        g.user = guard.user_from(request.cookies, request.headers.get("Authorization"))
        g.csrf = guard.csrf_token(g.user) if not g.user.anonymous else ""
        g.pages = pages
        g.settings = settings
        if request.method in ("POST", "PUT", "DELETE", "PATCH") and not _exempt(app):
            if g.user.anonymous:
                abort(401, "log in first")
            if not guard.csrf_ok(g.user, request.form.get("csrf") or
                                 request.headers.get("X-Greenlight-CSRF"),
                                 request.headers.get("Origin"), request.headers.get("Referer"),
                                 request.host):
                abort(403, "cross-site request refused (missing or wrong CSRF token)")

    @app.route("/")
    @app.route("/index.html")
    def index() -> str:
        # Buildbot's UI injects this page into its own (the Greenlight entry of its menu): a
        # fragment with scoped styles, whose frame keeps every page inside Buildbot's shell
        return render_template("greenlight/shell.html", mount=MOUNT,
                               pages=[(p.name, label) for p, label in pages])

    @app.errorhandler(401)
    @app.errorhandler(403)
    @app.errorhandler(400)
    @app.errorhandler(404)
    def error(exc):
        return layout(f"{exc.code} {exc.name}", f"<p>{html.escape(str(exc.description))}</p>"), \
            exc.code

    return app


def _exempt(app: Flask) -> bool:
    """Endpoints authenticated by credentials rather than a browser session (webhooks)."""
    view = app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "csrf_exempt", False))


def csrf_exempt(view):
    """Mark a view that authenticates each request itself (e.g. Basic auth webhooks)."""
    view.csrf_exempt = True
    return view


def _buildbot_secret(app: Flask) -> str:
    api = getattr(app, "buildbot_api", None)
    if api is None:
        raise RuntimeError("the Greenlight pages run inside the Buildbot master only")
    return api.master.www.site.session_secret


def buildbot_control(app: Flask, action: str, args: dict, path: tuple) -> Any:
    """Call Buildbot's data API control (e.g. rebuild) from a page's request thread."""
    from twisted.internet import reactor
    from twisted.internet.threads import blockingCallFromThread

    return blockingCallFromThread(reactor, app.buildbot_api.master.data.control, action, args,
                                  path)


def buildbot_call(app: Flask, function, *args) -> Any:
    """Run ``function(master, *args)`` (which may return a Deferred) in the reactor thread
    and wait for its result, from a page's request thread."""
    from twisted.internet import reactor
    from twisted.internet.threads import blockingCallFromThread

    return blockingCallFromThread(reactor, function, app.buildbot_api.master, *args)


def buildbot_get(app: Flask, path: tuple, **kwargs) -> Any:
    return app.buildbot_api.dataGet(path, **kwargs)


def dashboard_config(settings: Any) -> list[dict]:
    """The ``wsgi_dashboards`` entry for Buildbot's ``c['www']['plugins']``."""
    return [{"name": "greenlight", "caption": "Greenlight", "app": make_app(settings),
             "order": 5, "icon": "fa-traffic-light"}]


def state_path(settings: Any, name: str) -> Path:
    return settings.state_dir / name

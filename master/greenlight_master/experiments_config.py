"""The experiments side of the master: one store for the page, the CLI and the app hosts, and
the demo's experiment defined when the master starts.

``[experiments] db_url`` names the store (default ``sqlite:///{state_dir}/experiments.sqlite``).
The admin page reads it from the settings; the demo hosts get it as $GREENLIGHT_EXPERIMENTS_DB
(see ``greenlight.deploy.demo_hosts``); the CLI falls back to it when given neither ``--db`` nor
the variable. In the demo world, ``DemoSignup`` is defined at "QA and admins only" so the app's
enhanced signup banner ships dark until an experimenter rolls it out on the Experiments page.
"""
from __future__ import annotations

import logging

from greenlight.errors import GreenlightError
from greenlight.settings import Settings
from sqlalchemy.exc import SQLAlchemyError
from twisted.python import log as twisted_log

log = logging.getLogger(__name__)

DEMO_EXPERIMENT = "DemoSignup"
DEMO_BRANCHES = {"enhanced": 0.5}
DEFINED_BY = "greenlight-up"


def store_url(settings: Settings) -> str:
    return settings.expand(settings["experiments"]["db_url"])


def is_demo_world(settings: Settings) -> bool:
    """The embedded demo: no repository URL of its own, so the demo shop is what deploys."""
    return not settings["repository"]["url"]


def ensure_demo_experiment(settings: Settings):
    """Define ``DemoSignup`` (enhanced 50% / control 50%) at "QA and admins only" unless it
    exists; an existing one keeps the state experimenters gave it. Returns the experiment, or
    None outside the demo world."""
    if not is_demo_world(settings):
        return None
    from greenlight.experiments import Experiment, ExperimentStore

    store = ExperimentStore(store_url(settings))
    try:
        return store.define(Experiment(DEMO_EXPERIMENT, dict(DEMO_BRANCHES),
                                       description="Enhanced signup banner on the demo shop's "
                                                   "home page"), DEFINED_BY)
    finally:
        store.dispose()


def configure(settings: Settings, c: dict) -> None:
    """Runs at every master (re)configuration: the store must be usable for the page; a store
    that is down is logged, not fatal (the rest of the pipeline does not depend on it)."""
    try:
        ensure_demo_experiment(settings)
    except (GreenlightError, OSError, SQLAlchemyError) as exc:
        message = f"experiments: cannot define {DEMO_EXPERIMENT} in {store_url(settings)}: {exc}"
        log.warning("%s", message)
        twisted_log.msg(message)  # the master's twistd.log

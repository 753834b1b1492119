"""Shard fan-out (issue 5), opt-in: ``[shards] count >= 2`` spreads the verify build's tests
over the ``shard`` builder, one build per shard on the workers.

Off by default (count 0 or 1): the verify build runs ``pytest -n auto`` on one worker as
before. On, this adds the ``shard`` builder (``collapseRequests=False``, or the N requests of
one verify build would collapse into one), its Triggerable scheduler ``shards``, and swaps the
verify builder's factory for the fan-out variant (same builder name, so later extensions such
as deploy_config still find it and append their steps).
"""
from __future__ import annotations

from buildbot.plugins import schedulers, util

from greenlight_master import builders, config
from greenlight_master.settings import Settings


def enabled(settings: Settings) -> bool:
    return settings["shards"]["count"] >= 2


def configure(settings: Settings, c: dict) -> None:
    if not enabled(settings):
        return
    url = config.repo_url(settings)
    names = config.worker_names(settings)
    verify = next(b for b in c["builders"] if b.name == builders.VERIFY)
    verify.factory = builders.verify_factory_sharded(settings, url)
    c["builders"].append(util.BuilderConfig(
        name=builders.SHARD, workernames=names, factory=builders.shard_factory(settings, url),
        collapseRequests=False,
        description="One shard of a verify build's tests (triggered by verify)"))
    c["schedulers"].append(schedulers.Triggerable(name=builders.SHARD_SCHEDULER,
                                                  builderNames=[builders.SHARD]))

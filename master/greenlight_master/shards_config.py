"""Shard fan-out: the verify build's tests spread over the ``shard`` builder, one
build per shard on the workers.

``[shards] count = "auto"`` (the default) makes one shard per worker when the workers span more
than one machine (``[[workers.remote]]`` entries): W workers, local and remote, W shards, but
only for a build whose suite is predicted to take ``[shards] min_suite_seconds`` or more (a short
suite loses more to each shard build's start-up than it gains: that build runs its tests
itself). With local workers only, or one worker, there is no fan-out: the verify build runs
``pytest -n auto`` itself, as shards on the same machine would share its cores. An explicit
count >= 2 always fans out to that many shards; 0 or 1 turns it off. The decision is
``greenlight.shards.fanout``'s; this module only passes it the worker layout.

On, this adds the ``shard`` builder (``collapseRequests=False``, or the N requests of one verify
build would collapse into one), its Triggerable scheduler ``shards``, and swaps the verify
builder's factory for the fan-out variant (same builder name, so later extensions such as
deploy_config still find it and append their steps).

Worker slots: the verify build holds its worker while it waits for its shards. With one build
per worker (``max_builds=1``) the shards would get only W-1 workers, so each worker gets a
second slot; a Buildbot WorkerLock (one "shard" slot per worker) keeps that second slot for at
most one shard, and Buildbot runs at most one build of a builder on a worker, so a worker runs
at most its verify (or deploy) build plus one shard, and all W shards start at once.
"""
from __future__ import annotations

from buildbot.plugins import schedulers, util
from greenlight.settings import Settings

from greenlight_master import builders, workers_config
from greenlight_master.shards_layout import enabled, shard_count

# At most one shard build per worker at a time, whatever else the worker runs.
SHARD_SLOT = util.WorkerLock("greenlight-shard-slot", maxCount=1)
WORKER_SLOTS = 2  # the waiting verify build + one shard


def min_suite_seconds(settings: Settings) -> float | None:
    """The predicted suite time from which an ``"auto"`` build fans out; None for an explicit
    count, which always fans out."""
    if settings["shards"]["count"] != "auto":
        return None
    return float(settings["shards"]["min_suite_seconds"])


def _with_slots(workers: list, slots: int) -> list:
    """The same workers, each allowed ``slots`` builds at once (other arguments kept)."""
    result = []
    for old in workers:
        spec = old.getConfigDict()
        kwargs = dict(spec["kwargs"])
        if kwargs.get("max_builds") is not None:
            kwargs["max_builds"] = max(kwargs["max_builds"], slots)
        result.append(type(old)(*spec["args"], **kwargs))
    return result


def configure(settings: Settings, c: dict) -> None:
    if not enabled(settings):
        return
    url = settings.repo_url
    names = workers_config.all_worker_names(settings)
    c["workers"] = _with_slots(c["workers"], WORKER_SLOTS)
    verify = next(b for b in c["builders"] if b.name == builders.VERIFY)
    verify.factory = builders.verify_factory_sharded(settings, url, shard_count(settings),
                                                     min_suite_seconds(settings))
    c["builders"].append(util.BuilderConfig(
        name=builders.SHARD, workernames=names, factory=builders.shard_factory(settings, url),
        collapseRequests=False, locks=[SHARD_SLOT.access("counting")],
        description="One shard of a verify build's tests (triggered by verify)"))
    c["schedulers"].append(schedulers.Triggerable(name=builders.SHARD_SCHEDULER,
                                                  builderNames=[builders.SHARD]))


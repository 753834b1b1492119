"""How many shards a verify build fans out to, from the settings alone: ``[shards] count`` and
where the workers run, passed to ``greenlight.shards.fanout`` which decides. No Buildbot here,
so ``greenlight up`` can say the layout without loading the master's configuration (the
``shard`` builder itself is ``shards_config``'s)."""
from __future__ import annotations

from greenlight.settings import Settings
from greenlight.shards.fanout import ShardLayout, shard_layout

from greenlight_master import workers_config


def layout(settings: Settings) -> ShardLayout:
    """The shard count and why, from ``[shards] count`` and where the workers run."""
    return shard_layout(settings["shards"]["count"],
                        len(workers_config.local_worker_names(settings)),
                        len(workers_config.remote_workers(settings)))


def shard_count(settings: Settings) -> int:
    """The number of shards a verify build fans out to (below 2: no fan-out)."""
    return layout(settings).count


def enabled(settings: Settings) -> bool:
    return shard_count(settings) >= 2

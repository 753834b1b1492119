"""The fan-out in Greenlight's master config: ``[shards] count = "auto"`` (the default) means one
shard per worker when ``[[workers.remote]]`` puts workers on more than one machine, and no
fan-out with local workers only or one worker; 0 or 1 turns it off, an explicit count always
fans out, and every worker gets a slot for the waiting verify build plus one shard (a
WorkerLock keeps it to one shard)."""
from __future__ import annotations

import pytest
from buildbot.locks import WorkerLock

from greenlight.errors import SettingsError
from greenlight.steps.shards import (CollectShards, PlanShards, TriggerShards, fans_out,
                                     runs_here)
from greenlight.steps.tests import RunTests
from greenlight import settings
from greenlight_master import builders, config, shards_config, shards_layout


def load(tmp_path, shards: str = "", workers: int = 2, remote: int = 0) -> settings.Settings:
    """Settings with ``workers`` local workers and ``remote`` ``[[workers.remote]]`` entries."""
    path = tmp_path / "greenlight.toml"
    (tmp_path / "far.secret").write_text("pw\n")
    entries = "".join(f'[[workers.remote]]\nname = "far-{k}"\npassword_file = '
                      f'"{tmp_path / "far.secret"}"\n\n' for k in range(1, remote + 1))
    path.write_text(f'[greenlight]\nstate_dir = "{tmp_path / "var"}"\n\n'
                    f"[workers]\ncount = {workers}\n\n{entries}{shards}")
    return settings.load(path)


def shape(loaded: settings.Settings) -> dict:
    c = config.build_config(loaded)
    verify = next(b for b in c["builders"] if b.name == builders.VERIFY)
    plans = [s for s in verify.factory.steps if s.step_class is PlanShards]
    shard = [b for b in c["builders"] if b.name == builders.SHARD]
    return {"shards": plans[0].kwargs["shards"] if plans else 0,
            "max_builds": sorted({w.max_builds for w in c["workers"]}),
            "workers": len(c["workers"]),
            "triggerable": any(s.name == builders.SHARD_SCHEDULER for s in c["schedulers"]),
            "shard_builder": shard[0] if shard else None}


def test_default_is_one_shard_per_worker_across_machines(tmp_path):
    assert settings.load(None)["shards"]["count"] == "auto"
    loaded = load(tmp_path, workers=2, remote=1)
    got = shape(loaded)
    assert got["shards"] == 3 and got["workers"] == 3 and got["triggerable"]
    # The verify build waits on one worker: each worker has a slot for it plus one shard.
    assert got["max_builds"] == [2]
    builder = got["shard_builder"]
    assert builder.collapseRequests is False
    assert sorted(builder.workernames) == ["far-1", *config.worker_names(load(tmp_path))]
    [access] = builder.locks
    assert isinstance(access.lockid, WorkerLock) and access.lockid.maxCount == 1
    assert access.mode == "counting"


@pytest.mark.parametrize("workers", [2, 3])
def test_default_with_local_workers_only_runs_the_tests_in_the_verify_build(tmp_path, workers):
    # Shards on the master's own machine would share its cores with the verify build.
    loaded = load(tmp_path, workers=workers)
    assert shards_layout.shard_count(loaded) == 1 and not shards_layout.enabled(loaded)
    assert shards_layout.layout(loaded).reason.startswith(
        f"run here: all {workers} workers are on this machine")
    got = shape(loaded)
    assert got == {"shards": 0, "max_builds": [1], "workers": workers, "triggerable": False,
                   "shard_builder": None}
    # The verify build is the one-worker build: its test step runs the tests.
    (tmp_path / "one").mkdir()
    assert [s.step_class for s in _verify(loaded).factory.steps] == \
        [s.step_class for s in _verify(load(tmp_path / "one", workers=1)).factory.steps]


def test_remote_workers_only_fan_out_one_shard_each(tmp_path):
    got = shape(load(tmp_path, workers=0, remote=2))
    assert got["shards"] == 2 and sorted(got["shard_builder"].workernames) == ["far-1", "far-2"]


def test_one_worker_degrades_to_xdist_on_it(tmp_path):
    loaded = load(tmp_path, workers=1)
    assert shards_layout.shard_count(loaded) == 1 and not shards_layout.enabled(loaded)
    got = shape(loaded)
    assert got == {"shards": 0, "max_builds": [1], "workers": 1, "triggerable": False,
                   "shard_builder": None}


@pytest.mark.parametrize("count", [0, 1])
def test_zero_or_one_turns_the_fan_out_off(tmp_path, count):
    got = shape(load(tmp_path, f"[shards]\ncount = {count}\n", workers=3))
    assert got["shards"] == 0 and got["shard_builder"] is None and got["max_builds"] == [1]


def test_explicit_count_is_used_whatever_the_workers(tmp_path):
    got = shape(load(tmp_path, "[shards]\ncount = 5\n", workers=2))
    assert got["shards"] == 5 and got["max_builds"] == [2]


@pytest.mark.parametrize("value", ['"two"', "-1", "true", '"Auto"'])
def test_bad_count_names_file_and_line(tmp_path, value):
    with pytest.raises(SettingsError) as err:
        load(tmp_path, f"[shards]\n# one per worker\ncount = {value}\n")
    path = tmp_path / "greenlight.toml"
    assert str(err.value).startswith(f"{path}:9: [shards] count: expected \"auto\" (one shard "
                                     "per worker) or a whole number (0 or 1 = no fan-out), got")


def _verify(loaded: settings.Settings):
    c = config.build_config(loaded)
    return next(b for b in c["builders"] if b.name == builders.VERIFY)


def _steps(loaded: settings.Settings) -> dict:
    return {s.step_class: s for s in _verify(loaded).factory.steps}


def test_auto_carries_both_paths_guarded_by_the_plan(tmp_path):
    loaded = load(tmp_path, remote=1)
    assert loaded["shards"]["min_suite_seconds"] == 30
    steps = _steps(loaded)
    assert steps[PlanShards].kwargs["min_suite_seconds"] == 30.0
    for cls in (TriggerShards, CollectShards):
        assert steps[cls].kwargs["doStepIf"] is fans_out
    run = steps[RunTests].kwargs
    assert run["doStepIf"] is runs_here
    assert run["durations_db"] == loaded.expand(loaded["shards"]["durations_url"])
    # The same test command as the one-worker build: the tests under coverage prepare --run.
    (tmp_path / "one").mkdir()
    one = _steps(load(tmp_path / "one", workers=1))[RunTests].kwargs
    assert run["command"] == one["command"] and run["junit_file"] == one["junit_file"]


def test_explicit_count_always_fans_out(tmp_path):
    steps = _steps(load(tmp_path, "[shards]\ncount = 2\n"))
    assert steps[PlanShards].kwargs["min_suite_seconds"] is None
    assert RunTests not in steps and "doStepIf" not in steps[TriggerShards].kwargs


def test_min_suite_seconds_is_read(tmp_path):
    loaded = load(tmp_path, "[shards]\nmin_suite_seconds = 90.5\n", remote=1)
    assert shards_config.min_suite_seconds(loaded) == 90.5
    assert _steps(loaded)[PlanShards].kwargs["min_suite_seconds"] == 90.5


@pytest.mark.parametrize("value", ['"30"', "-1", "true", "nan"])
def test_bad_min_suite_seconds_names_file_and_line(tmp_path, value):
    with pytest.raises(SettingsError) as err:
        load(tmp_path, f"[shards]\ncount = \"auto\"\nmin_suite_seconds = {value}\n")
    path = tmp_path / "greenlight.toml"
    assert str(err.value).startswith(f"{path}:9: [shards] min_suite_seconds: expected "
                                     "seconds >= 0")

"""Sharding engine: duration-balanced shards, JUnit results, the union check, flaky tests.

The public surface below is pure and stdlib-only, because the pytest plugin
(``greenlight.shards.pytest_plugin``) imports this package in every pytest run. The
database-backed parts are imported from their modules: ``greenlight.shards.durations``
(DurationStore) and ``greenlight.shards.flaky`` (FlakyLedger); ``greenlight.shards.rerun`` runs
pytest.
"""
from greenlight.shards.collect import ShardsVerdict, judge_shards
from greenlight.shards.junit import TestResult, parse_junit, parse_junit_file
from greenlight.shards.planner import Plan, Shard, parse_test_ids, plan_shards
from greenlight.shards.union import UnionReport, check_union

__all__ = ["Plan", "Shard", "ShardsVerdict", "TestResult", "UnionReport", "check_union",
           "judge_shards", "parse_junit", "parse_junit_file", "parse_test_ids", "plan_shards"]

"""Experiment reports: buckets from attribute and event filters with exact counts, attributes
recorded by the client once per user, a date range, the seed's numbers, and the CLI's formats."""
from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from greenlight.cli.main import main
from greenlight.experiments import (Bucket, EventFilter, Experiment, ExperimentClient,
                                    ExperimentStore, render_report, report, save_bucket)
from greenlight.experiments.store import exposures_table, events_table
from greenlight.stats.balance import attribute_balance, benjamini_hochberg

DAY = 86400.0
T0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z


def _store(url: str, name: str = "Signup", attributes=("gender", "platform")) -> ExperimentStore:
    store = ExperimentStore(url)
    store.define(Experiment(name, {"enhanced": 0.5}, status="rollout", rollout_pct=100,
                            attributes=attributes), "test")
    return store


def _bucket(data: dict, name: str) -> dict:
    return next(b for b in data["buckets"] if b["name"] == name)


def test_bucket_from_an_event_filter_counts_exactly(db_url):
    """'logged into client' = users with a login with platform=client after exposure, before
    the report's end: logins before exposure, on another platform, or after the end don't
    count."""
    store = _store(db_url)
    exposures, events = [], []
    expected = {"control": 0, "enhanced": 0}
    for i in range(200):
        user, branch = f"u{i}", ("control", "enhanced")[i % 2]
        at = T0 + i * 60
        exposures.append(("Signup", user, branch, at))
        kind = i % 5
        if kind == 0:    # logged into the client after exposure: in the bucket
            events.append((user, "login", 1.0, at + 10, '{"platform":"client"}'))
            expected[branch] += 1
        elif kind == 1:  # the web: not in it
            events.append((user, "login", 1.0, at + 10, '{"platform":"web"}'))
        elif kind == 2:  # the client, but before exposure: not in it
            events.append((user, "login", 1.0, at - 10, '{"platform":"client"}'))
        elif kind == 3:  # the client, but after the report's end: not in it
            events.append((user, "login", 1.0, T0 + 3 * DAY, '{"platform":"client"}'))
        events.append((user, "purchase", float(i % 7), at + 20))
    store.write_exposures(exposures)
    store.write_events(events)
    bucket = Bucket("client_login", events=(EventFilter("login", {"platform": "client"}),))
    save_bucket("Signup", bucket, "ann", store=store)
    data = report("Signup", T0, T0 + 2 * DAY, store=store)
    assert _bucket(data, "all")["users"] == {"control": 100, "enhanced": 100}
    in_bucket = _bucket(data, "client_login")
    assert in_bucket["users"] == expected == {"control": 20, "enhanced": 20}
    purchase = next(m for m in in_bucket["metrics"] if m["metric"] == "purchase")
    members = [i for i in range(200) if i % 5 == 0]
    for row in purchase["branches"]:
        values = [float(i % 7) for i in members if ("control", "enhanced")[i % 2] == row["branch"]]
        assert row["converting"] == len(values)  # a purchase of 0 is still a purchase
        assert row["mean_per_user"] == pytest.approx(sum(values) / len(values))
    assert "login" in {m["metric"] for m in in_bucket["metrics"]}
    store.dispose()


def test_date_range_takes_users_first_exposed_in_it_and_events_up_to_its_end(tmp_path):
    store = _store(f"sqlite:///{tmp_path}/e.sqlite")
    store.write_exposures([("Signup", "early", "control", T0 - DAY),
                           ("Signup", "in1", "control", T0 + 100),
                           ("Signup", "in2", "enhanced", T0 + 200),
                           ("Signup", "late", "enhanced", T0 + 5 * DAY)])
    store.write_events([("in1", "purchase", 5.0, T0 + 150), ("in1", "purchase", 7.0, T0 + 4 * DAY),
                        ("in2", "purchase", 3.0, T0 + 300), ("early", "purchase", 9.0, T0 + 10)])
    data = report("Signup", T0, T0 + DAY, store=store)
    everyone = _bucket(data, "all")
    assert everyone["users"] == {"control": 1, "enhanced": 1}
    purchase = {r["branch"]: r for r in everyone["metrics"][0]["branches"]}
    assert purchase["control"]["mean_per_user"] == 5.0  # the 7.0 came after the end
    assert purchase["enhanced"]["mean_per_user"] == 3.0
    store.dispose()


def test_client_records_declared_attributes_once_per_user(tmp_path):
    url = f"sqlite:///{tmp_path}/e.sqlite"
    client = ExperimentClient(url, registry=CollectorRegistry(), start=False)
    client.define(Experiment("Signup", {"enhanced": 0.5}, status="rollout", rollout_pct=100,
                             attributes=("gender", "age_band")))
    for i in range(400):
        attributes = {"gender": "f" if i % 3 else "m", "age_band": "25-34", "secret": "x"}
        client.branch_for(f"u{i}", "Signup", attributes=attributes)
        client.branch_for(f"u{i}", "Signup", attributes={"gender": "changed"})  # first wins
        client.record_event(f"u{i}", "login", properties={"platform": "client"})
    client.flush()
    data = report("Signup", store=client.store)
    everyone = _bucket(data, "all")
    assert sum(everyone["users"].values()) == 400
    gender = next(a for a in everyone["attributes"] if a["name"] == "gender")
    users = {v["value"]: sum(b["users"] for b in v["branches"].values()) for v in gender["values"]}
    assert users == {"f": 266, "m": 134}  # "changed" never stored; "secret" not declared
    assert [a["name"] for a in everyone["attributes"]] == ["gender", "age_band"]
    assert gender["balance"]["p_value"] is not None and not gender["balance"]["imbalanced"]
    client.close()


def test_the_seeds_numbers_reproduce(tmp_path):
    """64,630 of 148,266 vs 66,903 of 150,702 users converting: p = 0.000010."""
    url = f"sqlite:///{tmp_path}/seed.sqlite"
    store = _store(url, "Seed", attributes=())
    rows, converting = [], []
    for branch, users, converted in (("control", 148_266, 64_630),
                                     ("enhanced", 150_702, 66_903)):
        for i in range(users):
            rows.append(("Seed", f"{branch}-{i}", hash((branch, i)), branch, T0))
            if i < converted:
                converting.append((f"{branch}-{i}", hash((branch, i)), "purchase", 1.0, T0 + 1))
    # A bulk load through the driver (SQLAlchemy's executemany of 430,000 dicts took 2.4 s more
    # than SQLite's own), then the running totals rebuilt.
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO {exposures_table.name} (experiment, user_id, "
                             "user_key, branch, at) VALUES (?, ?, ?, ?, ?)", rows)
        conn.exec_driver_sql(f"INSERT INTO {events_table.name} (user_id, user_key, name, "
                             "value, at) VALUES (?, ?, ?, ?, ?)", converting)
    store.rebuild_totals("Seed")
    data = report("Seed", T0, T0 + DAY, store=store)
    everyone = _bucket(data, "all")
    assert everyone["users"] == {"control": 148_266, "enhanced": 150_702}
    rows = {r["branch"]: r for r in everyone["metrics"][0]["branches"]}
    assert (rows["control"]["converting"], rows["enhanced"]["converting"]) == (64_630, 66_903)
    p = rows["enhanced"]["vs_control"]["rate_p_value"]
    assert f"{p:.6f}" == "0.000010"
    assert "0.000010" in render_report(data, "text")
    store.dispose()


def test_cli_bucket_and_report_in_every_format(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/e.sqlite"
    store = _store(url)
    store.write_exposures([("Signup", f"u{i}", ("control", "enhanced")[i % 2], T0 + i,
                            {"gender": "f", "platform": "client" if i % 3 else "web"})
                           for i in range(60)])
    store.write_events([(f"u{i}", "login", 1.0, T0 + 100 + i, '{"platform":"client"}')
                        for i in range(0, 60, 2)])
    assert main(["experiment", "--db", url, "bucket", "Signup", "client_login", "--did",
                 "login:platform=client", "--where", "platform=client", "--user", "ann"]) == 0
    assert "client_login" in capsys.readouterr().out
    assert main(["experiment", "--db", url, "report", "Signup", "--from", "2024-05-01",
                 "--to", "2024-05-01", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in data["buckets"]] == ["all", "client_login"]
    # users 0..59: logged into the client = even i; platform=client attribute = i % 3 != 0
    expected = sum(1 for i in range(0, 60, 2) if i % 3)
    assert sum(_bucket(data, "client_login")["users"].values()) == expected
    assert "Benjamini-Hochberg" in data["multiple_comparisons"]
    for fmt, marker in (("md", "## Bucket client_login"), ("html", 'id="bucket-client_login"'),
                        ("text", "Bucket client_login")):
        assert main(["experiment", "--db", url, "report", "Signup", "--format", fmt]) == 0
        assert marker in capsys.readouterr().out
    assert main(["experiment", "--db", url, "report", "Signup", "--bucket", "nope"]) == 2
    assert "no bucket 'nope'" in capsys.readouterr().err
    store.dispose()


def test_html_report_escapes_what_users_named(tmp_path):
    store = _store(f"sqlite:///{tmp_path}/e.sqlite")
    store.write_exposures([("Signup", "u1", "control", T0, {"gender": "<script>x</script>"})])
    html = render_report(report("Signup", T0, T0 + DAY, store=store), "html")
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    store.dispose()


def test_balance_and_fdr_functions():
    balanced = attribute_balance({"control": {"f": 6936, "m": 3064},
                                  "enhanced": {"f": 6906, "m": 3094}})
    assert balanced.p_value > 0.05 and not balanced.imbalanced(0.05)
    skewed = attribute_balance({"control": {"f": 700, "m": 300}, "enhanced": {"f": 600, "m": 400}})
    assert skewed.imbalanced(0.05)
    assert attribute_balance({"control": {"f": 10}, "enhanced": {"f": 12}}).p_value is None
    # Benjamini-Hochberg: known values (R's p.adjust(method = "BH")).
    q = benjamini_hochberg([0.01, 0.04, 0.03, None, 0.005])
    assert q[3] is None
    assert q == pytest.approx([0.02, 0.04, 0.04, None, 0.02])

"""Which deploy shipped a commit: binary search over the ledger, rollbacks and the ledger's start."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from greenlight.incidents.attribution import attribute, shipping_deploys
from greenlight.incidents.model import Deploy

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _line(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def _contains(order: list[str]):
    """A linear history: commit a is an ancestor of b when it comes first."""
    def contains(commit: str, sha: str) -> bool:
        return sha in order and commit in order and order.index(commit) <= order.index(sha)
    return contains


def _deploys(shas: list[str], previous: str | None = None, **outcomes: str) -> list[Deploy]:
    out = []
    for i, sha in enumerate(shas):
        out.append(Deploy(id=i + 1, sha=sha, previous_sha=previous, started_at=T + timedelta(
            hours=i), outcome=outcomes.get(sha, "success")))
        previous = sha
    return out


def test_a_commit_between_deploys_goes_to_the_first_deploy_containing_it():
    order = _line(100)
    deploys = shipping_deploys(_deploys(order[::10]))          # c0, c10, c20, ...
    answer = attribute("c37", deploys, _contains(order))
    assert answer.status == "shipped" and answer.deploy.sha == "c40"
    assert attribute("c40", deploys, _contains(order)).deploy.sha == "c40"
    assert attribute("c95", deploys, _contains(order)).status == "not_deployed"


def test_rolled_back_deploys_do_not_count_and_a_redeploy_after_a_rollback_is_found():
    order = _line(30)
    deploys = _deploys(["c5", "c10", "c5", "c20"], c10="rolled_back")
    shipping = shipping_deploys(deploys)
    assert [d.sha for d in shipping] == ["c5", "c5", "c20"]
    assert attribute("c8", shipping, _contains(order)).deploy.sha == "c20"


def test_a_commit_live_before_the_first_deploy_read_is_before_the_start():
    order = _line(30)
    deploys = shipping_deploys(_deploys(["c10", "c20"], previous="c5"))
    answer = attribute("c3", deploys, _contains(order))
    assert answer.status == "before_start" and answer.deploy.sha == "c10"
    assert attribute("c7", deploys, _contains(order)).status == "shipped"

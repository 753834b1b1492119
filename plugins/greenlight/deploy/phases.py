"""The deploy itself: prepare → migrate → canary → observe/judge → rest → observe → done.

Every step that moves a host is written to the ledger *before* it happens (write-ahead), so
when a deploy process dies at any point the next deploy, rollback or ``deploys recover`` (all
under the same lock) brings every host back to one release. A host that fails to switch,
restart or become healthy stops the deploy and rolls back the hosts already switched; a
failing judge rolls the canary back, marks the release bad and records an incident request.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from greenlight.deploy import releases
from greenlight.deploy.health import check_health
from greenlight.deploy.hosts import DeploySettings, Host
from greenlight.deploy.ledger import Ledger
from greenlight.deploy.lock import DeployLock, DeployQueue
from greenlight.deploy import story
from greenlight.deploy.transport_errors import HostDidNotStart, HostError
from greenlight.deploy.transports import transport_for
from greenlight.errors import GreenlightError, UsageError

CRASH_ENV = "GREENLIGHT_CRASH_AT"


class Verdict(Protocol):
    outcome: str  # fail | pass | pending
    table: str


class CanaryJudge(Protocol):
    """What the phases need from the judge: one verdict per call, same window, canary vs
    baseline hosts (the judge scrapes them itself)."""

    def observe(self, canary_hosts: list[Host], baseline_hosts: list[Host]) -> Verdict: ...


@dataclass
class Progress:
    """Where a running deploy is, after each host move (for a live view, and so whoever
    watches the process can say where it stopped if it dies: ``if_interrupted``)."""
    deploy_id: int
    kind: str
    phase: str
    hosts_done: int
    hosts_total: int

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["if_interrupted"] = story.Progress(self.phase, self.hosts_done,
                                               self.hosts_total).interrupted(self.kind)
        return out


@dataclass
class PhaseReport:
    name: str  # prepare | migrate | canary | judge | rest | observe | rollback | recover
    status: str  # ok | failed | skipped
    summary: str
    log: str = ""  # e.g. the judge's last table
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DeployResult:
    outcome: str  # success | rolled_back | failed | aborted | superseded | noop
    sha: str
    previous_sha: str | None
    message: str
    deploy_id: int | None = None
    incident_id: int | None = None
    phases: list[PhaseReport] = field(default_factory=list)
    failure: dict[str, Any] | None = None  # a host that did not start: cause, log tail
    hosts_found_down: list[str] = field(default_factory=list)  # down before their switch

    @property
    def ok(self) -> bool:
        return self.outcome in ("success", "noop", "superseded")

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "phases"}
        out["phases"] = [p.to_json() for p in self.phases]
        return out


class DeployFailed(GreenlightError):
    """A phase failed; the hosts it had moved are already back on the previous release."""


def crash_point(name: str) -> None:
    """Fault injection for tests: SIGKILL ourselves when $GREENLIGHT_CRASH_AT names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Deployer:
    """Runs deploys, rollbacks and crash recovery over the settings' hosts."""

    def __init__(self, settings: DeploySettings, ledger: Ledger,
                 judge_factory: Callable[[], CanaryJudge] | None = None,
                 on_phase: Callable[[PhaseReport], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_progress: Callable[[Progress], None] | None = None):
        self.settings = settings
        self.ledger = ledger
        self.judge_factory = judge_factory
        self.on_phase = on_phase or (lambda report: None)
        self.on_progress = on_progress or (lambda progress: None)
        self._progress: dict[int, tuple[str, str, set[str], int]] = {}
        self._release: str | None = None
        self.sleep = sleep
        self.transports = {h.name: transport_for(h) for h in settings.hosts}
        self.lock_wait: float | None = None

    # ---- entry points (each takes the lock) ---------------------------------------------
    def deploy(self, rev: str, trigger: str = "cli", branch: str | None = None) -> DeployResult:
        sha = releases.resolve_release(self.settings.repo, rev)
        queue = DeployQueue(os.path.join(self.settings.state_dir, "deploy.queue"))
        queue.request(sha)
        with DeployLock(self.settings.lock_file, wait=self.lock_wait):
            if not queue.take(sha):
                return DeployResult("superseded", sha, None,
                                    f"a newer deploy ({(queue.newest() or 'done')[:12]}) was "
                                    "requested while this one waited; it contains this one")
            self._recover()
            if self.ledger.is_bad(sha):
                raise UsageError(f"release {sha[:12]} is marked bad in the ledger; push a fix "
                                 "(it rolls forward) instead of deploying it again")
            states = self.host_states()
            live = self.live_release(states)
            if live == sha and all(st.get("current") == sha for st in states.values()):
                return DeployResult("noop", sha, live, f"{sha[:12]} is already live everywhere")
            if live and live != sha and releases.contains(self.settings.repo, live, sha):
                return DeployResult("superseded", sha, live,
                                    f"{sha[:12]} is older than the live {live[:12]}, which "
                                    "contains it; use `greenlight rollback --to` to go back")
            return self._deploy_locked(sha, live, trigger, branch or self.settings.branch)

    def rollback(self, to: str | None = None, trigger: str = "cli", force: bool = False
                 ) -> DeployResult:
        with DeployLock(self.settings.lock_file, wait=self.lock_wait):
            self._recover()
            live = self.live_release()
            target = (releases.resolve_release(self.settings.repo, to) if to
                      else self.rollback_target(live))
            if target is None:
                raise UsageError("no earlier good release to roll back to; name one with --to")
            if self.ledger.is_bad(target) and not force:
                raise UsageError(f"release {target[:12]} is marked bad; pass --force to roll "
                                 "back to it anyway")
            deploy_id = self.ledger.start_deploy(
                target, live, branch=self.settings.branch, trigger=trigger, kind="rollback",
                hosts=[h.name for h in self.settings.hosts])
            self._track(deploy_id, "rollback", target)
            result = DeployResult("success", target, live, "", deploy_id)
            try:
                staging = self._stage(target)
                self._phase(result, "prepare", lambda: self._prepare(target, staging))
                self._phase(result, "rollback", lambda: self._converge(
                    deploy_id, self.settings.hosts, target, "rollback"))
            except (DeployFailed, HostError) as exc:
                result.outcome, result.message = "failed", str(exc)
                self.ledger.finish_deploy(deploy_id, "failed", str(exc))
                return result
            result.message = f"all {len(self.settings.hosts)} hosts on {target[:12]}"
            result.message += self._down_note(result, deploy_id)
            self.ledger.finish_deploy(deploy_id, "success", result.message)
            return result

    def recover(self) -> list[DeployResult]:
        """Bring hosts of interrupted deploys back to one release (under the lock)."""
        with DeployLock(self.settings.lock_file, wait=self.lock_wait):
            return self._recover()

    # ---- queries ------------------------------------------------------------------------
    def host_states(self) -> dict[str, dict]:
        """Host name -> the host agent's state (current, previous, releases) or an error."""
        def one(host: Host) -> dict:
            try:
                return self.transports[host.name].agent("state")
            except HostError as exc:
                return {"error": str(exc), "current": None, "previous": None, "releases": []}

        with ThreadPoolExecutor(max_workers=max(1, self.settings.parallel)) as pool:
            states = list(pool.map(one, self.settings.hosts))
        return {h.name: st for h, st in zip(self.settings.hosts, states)}

    def live_release(self, states: dict[str, dict] | None = None) -> str | None:
        """The release most hosts are on (all of them, outside a deploy)."""
        states = states or self.host_states()
        counts = Counter(s["current"] for s in states.values() if s.get("current"))
        return counts.most_common(1)[0][0] if counts else None

    def rollback_target(self, live: str | None) -> str | None:
        """The newest earlier release that is not bad: the hosts' ``previous`` link first, then
        the ledger's successful deploys."""
        bad = set(self.ledger.bad_releases())
        states = self.host_states()
        prev = Counter(s["previous"] for s in states.values() if s.get("previous"))
        for sha, _ in prev.most_common():
            if sha != live and sha not in bad:
                return sha
        for record in self.ledger.list_deploys(limit=200):
            for sha in (record.sha, record.previous_sha):
                if (record.outcome == "success" and sha and sha != live and sha not in bad):
                    return sha
        return None

    # ---- the deploy -----------------------------------------------------------------------
    def _deploy_locked(self, sha: str, live: str | None, trigger: str, branch: str
                       ) -> DeployResult:
        s = self.settings
        hosts = list(s.hosts)
        deploy_id = self.ledger.start_deploy(
            sha, live, branch=branch, trigger=trigger, hosts=[h.name for h in hosts],
            commits=releases.commits_between(s.repo, live, sha))
        self._track(deploy_id, "deploy", sha)
        result = DeployResult("success", sha, live, "", deploy_id)
        switched: list[Host] = []
        try:
            staging = self._stage(sha)
            self._phase(result, "prepare", lambda: self._prepare(sha, staging))
            crash_point("after-prepare")
            self._phase(result, "migrate", lambda: self._migrate(sha, live, staging))
            crash_point("after-migrate")
            if live is None:  # first deploy: nothing to compare a canary with
                self._phase(result, "rest", lambda: self._switch_hosts(
                    deploy_id, hosts, sha, switched, "rest"))
            else:
                n = s.canary_count()
                canary, rest = hosts[:n], hosts[n:]
                baseline = rest
                if s.judge.get("baseline") == "fresh" and rest:
                    # as many baseline hosts as canaries, restarted on the previous release
                    # at the same moment, so warm-up and process age do not count
                    baseline = rest[:len(canary)]
                    self._phase(result, "baseline", lambda: self._converge(
                        deploy_id, baseline, live, "baseline"))
                self._phase(result, "canary", lambda: self._switch_hosts(
                    deploy_id, canary, sha, switched, "canary"))
                verdict = self._judge(result, deploy_id, canary, baseline)
                if verdict is not None and verdict.outcome != "pass":
                    return self._judge_failed(result, deploy_id, sha, live, switched, verdict)
                self._phase(result, "rest", lambda: self._switch_hosts(
                    deploy_id, rest, sha, switched, "rest"))
            self._phase(result, "observe", lambda: self._observe_health(hosts))
        except HostDidNotStart as exc:
            # A canary that cannot start the release condemns the release (that is what a
            # canary is for) when there is evidence against the release (an exception in its
            # start-up log, an error answer); a canary that was only slow to answer on a
            # loaded machine, or one host failing later, after canaries started the same
            # release, is more likely the host: the deploy stops, says why, the release stays.
            if exc.release == sha and exc.release_at_fault and (
                    exc.phase == "canary" or (exc.phase == "rest" and live is None)):
                return self._start_failed(result, deploy_id, sha, live, switched, exc)
            return self._abort(result, deploy_id, live, switched, str(exc))
        except (DeployFailed, HostError) as exc:
            return self._abort(result, deploy_id, live, switched, str(exc))
        result.message = f"{sha[:12]} live on all {len(hosts)} hosts"
        result.message += self._down_note(result, deploy_id)
        self.ledger.finish_deploy(deploy_id, "success", result.message)
        self._after(sha)
        return result

    def _track(self, deploy_id: int, kind: str, release: str) -> None:
        """Start counting this deploy's hosts for its progress reports."""
        self._progress[deploy_id] = (kind, "", set(), len(self.settings.hosts))
        self._release = release

    def _report_progress(self, deploy_id: int, phase: str | None = None,
                         host_up: str | None = None) -> None:
        kind, current, done, total = self._progress.get(deploy_id,
                                                        ("deploy", "", set(), 0))
        if host_up:
            done.add(host_up)
        self._progress[deploy_id] = (kind, phase or current, done, total)
        self.on_progress(Progress(deploy_id, kind, phase or current, len(done), total))

    def _begin(self, result: DeployResult, name: str) -> None:
        """Write that a phase begins: a deploy killed in it says where it stopped."""
        if result.deploy_id is not None:
            self.ledger.record_event(result.deploy_id, f"begin:{name}", release=result.sha)
            self._report_progress(result.deploy_id, phase=name)

    def _down_note(self, result: DeployResult, deploy_id: int) -> str:
        """``; host03 was down before its switch (started by it)`` for the message."""
        down = [d["host"] for d in story.hosts_found_down(self.ledger.deploy(deploy_id))]
        result.hosts_found_down = list(dict.fromkeys(down))
        if not down:
            return ""
        names = ", ".join(result.hosts_found_down)
        return (f"; {names} {'was' if len(result.hosts_found_down) == 1 else 'were'} down "
                "before the switch (started by it)")

    def _phase(self, result: DeployResult, name: str, action: Callable[[], str | None]) -> None:
        report = PhaseReport(name, "ok", "")
        self._begin(result, name)
        try:
            report.summary = action() or "ok"
        except (DeployFailed, HostError) as exc:
            report.status, report.summary = "failed", str(exc)
            if isinstance(exc, HostDidNotStart):
                report.log = exc.log_tail
            raise
        finally:
            report.finished_at = time.time()
            result.phases.append(report)
            if result.deploy_id is not None:
                self.ledger.record_event(result.deploy_id, f"phase:{name}",
                                         release=result.sha,
                                         data={"status": report.status,
                                               "summary": report.summary})
            self.on_phase(report)

    def _stage(self, sha: str) -> Path:
        return releases.export_commit(self.settings.repo, sha,
                                      os.path.join(self.settings.state_dir, "staging"))

    def _prepare(self, sha: str, staging: Path) -> str:
        """Install the release on every host (in parallel); nothing is switched yet."""
        s = self.settings

        def install(host: Host) -> bool:
            return releases.install_release(self.transports[host.name], sha, staging,
                                            list(s.build), s.build_timeout, s.keep_releases)

        with ThreadPoolExecutor(max_workers=max(1, s.parallel)) as pool:
            futures = [(h, pool.submit(install, h)) for h in s.hosts]
            errors, fresh = [], 0
            for host, future in futures:
                try:
                    fresh += bool(future.result())
                except HostError as exc:
                    errors.append(str(exc))
        if errors:
            raise DeployFailed("release could not be installed, no host was switched: "
                               + "; ".join(errors))
        return f"release {sha[:12]} installed on {fresh} host(s), present on {len(s.hosts)}"

    def _migrate(self, sha: str, previous: str | None, staging: Path) -> str:
        s = self.settings
        if not s.migrate:
            return "no migrate command in the settings"
        env = {**os.environ, "GREENLIGHT_SHA": sha, "GREENLIGHT_PREVIOUS_SHA": previous or ""}
        try:
            proc = subprocess.run(list(s.migrate), cwd=staging, env=env, capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=s.migrate_timeout)
        except FileNotFoundError:
            raise DeployFailed(f"migrate command {s.migrate[0]!r} not found; no host was "
                               "switched") from None
        except subprocess.TimeoutExpired:
            raise DeployFailed(f"migrate command timed out after {s.migrate_timeout}s; no host "
                               "was switched") from None
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")[-2000:]
        if proc.returncode != 0:
            raise DeployFailed(f"migrate command failed (exit {proc.returncode}); no host was "
                               f"switched: {output.strip()}")
        return f"migrate ok: {output.strip()[-300:]}"

    def _switch_hosts(self, deploy_id: int, hosts: list[Host], sha: str,
                      switched: list[Host], phase: str) -> str:
        """Switch, restart and health-check hosts; the first failure raises (caller rolls
        back everything in ``switched``, which includes the host that failed)."""
        if not hosts:
            return "no hosts in this phase"

        def one(host: Host) -> None:
            switched.append(host)
            self._move_host(deploy_id, host, sha, phase)

        if len(hosts) == 1 or self.settings.parallel <= 1:
            for host in hosts:
                one(host)
        else:
            with ThreadPoolExecutor(max_workers=self.settings.parallel) as pool:
                futures = [pool.submit(one, h) for h in hosts]
                errors = []
                for future in futures:
                    try:
                        future.result()
                    except HostError as exc:
                        errors.append(exc)
                if errors:
                    raise errors[0]
        return f"{len(hosts)} host(s) on {sha[:12]}: {', '.join(h.name for h in hosts)}"

    def _move_host(self, deploy_id: int, host: Host, sha: str, phase: str) -> None:
        """One host onto ``sha``: ledger first, then switch, restart, health."""
        s = self.settings
        transport = self.transports[host.name]
        started = time.monotonic()
        # One look first: a host found down is restarted by the switch, and the ledger (and
        # the page) say so instead of counting it as one that was serving. Only a refused
        # connection (nothing listening) is "down"; a slow answer on a loaded machine is not.
        probe = check_health(host.health_url, s.health_timeout, 1, 0.0)
        was_up = True if probe.healthy else False if "refused" in probe.detail else None
        self.ledger.record_event(deploy_id, "switch", host=host.name, release=sha,
                                 data={"phase": phase, "was_up": was_up})
        crash_point(f"before-switch:{phase}:{host.name}")
        switch_at = time.monotonic()
        switched = transport.agent("switch", sha, *([host.start_log] if host.start_log else []))
        was, log_from = switched.get("was"), int(switched.get("log_size", 0))
        if was_up is False and was:  # it had a release and nothing listened: down, not new
            self.ledger.record_event(deploy_id, "found_down", host=host.name, release=sha,
                                     data={"phase": phase, "was": was})
        crash_point(f"after-switch:{phase}:{host.name}")
        restart_at = time.monotonic()
        if host.restart:
            result = transport.run(host.expand(host.restart), timeout=s.restart_timeout)
            if result["returncode"] != 0:
                raise self._did_not_start(
                    deploy_id, host, phase, sha, log_from, f"restart command failed (exit "
                    f"{result['returncode']}): {result['output'].strip()[-500:]}", False)
        crash_point(f"after-restart:{phase}:{host.name}")
        health_at = time.monotonic()
        health = check_health(host.health_url, s.health_timeout, s.health_retries,
                              s.health_interval)
        if not health.healthy:
            raise self._did_not_start(
                deploy_id, host, phase, sha, log_from,
                f"not healthy on {sha[:12]} after {health.attempts} tries in "
                f"{health.seconds:.1f}s of {host.health_url}: {health.detail}",
                health.detail.startswith("HTTP "))
        up_at = time.monotonic()
        self.ledger.record_host_release(host.name, sha, deploy_id)
        # Where the host's time went (the ledger is what a slow roll-out is diagnosed from).
        self.ledger.record_event(deploy_id, "up", host=host.name, release=sha, data={
            "phase": phase, "was": was, "ledger_s": round(switch_at - started, 3),
            "switch_s": round(restart_at - switch_at, 3),
            "restart_s": round(health_at - restart_at, 3),
            "health_s": round(up_at - health_at, 3), "health_tries": health.attempts,
            "record_s": round(time.monotonic() - up_at, 3), "was_up": was_up})
        self._report_progress(deploy_id, host_up=host.name if sha == self._release else None)

    def _did_not_start(self, deploy_id: int, host: Host, phase: str, sha: str, log_from: int,
                       detail: str, answered: bool) -> HostDidNotStart:
        """The error for a host that did not come up, with the tail of its start-up log
        (fetched through its transport) and the exception line in it; written to the ledger."""
        log_tail = ""
        if host.start_log:
            try:
                log_tail = self.transports[host.name].agent("tail", host.start_log,
                                                            str(log_from))["text"]
            except HostError as exc:
                log_tail = f"(start-up log {host.start_log} unavailable: {exc})"
        error = HostDidNotStart(host.name, phase, sha, detail, log_tail,
                                story.exception_line(log_tail), answered)
        self.ledger.record_event(deploy_id, "start_failed", host=host.name, release=sha,
                                 data={**error.to_json(), "outcome": "fail"})
        return error

    def _judge(self, result: DeployResult, deploy_id: int, canary: list[Host],
               baseline: list[Host]):
        """Observe until the judge decides or the window ends; None when there is no judge."""
        s = self.settings
        report = PhaseReport("judge", "ok", "")
        self._begin(result, "judge")
        if self.judge_factory is None or not baseline:
            report.status = "skipped"
            report.summary = ("no judge configured" if self.judge_factory is None
                              else "no baseline hosts left to compare with")
            self._close_report(result, report)
            return None
        judge = self.judge_factory()
        if hasattr(judge, "forecast"):  # the expected time to verdict at today's traffic
            report.log = judge.forecast(canary, baseline)
            self.ledger.record_event(deploy_id, "judge-forecast", release=result.sha,
                                     data={"text": report.log})
        # The judge ends its own window (observe_seconds at most) and says whether an
        # undecided one passes; this backstop catches a judge that never concluded, which is
        # no evidence of a healthy canary.
        deadline = time.monotonic() + s.observe_seconds + max(2.0, 3 * s.judge_interval)
        verdict = None
        while True:
            verdict = judge.observe(canary, baseline)
            data = {"outcome": verdict.outcome, "table": verdict.table}
            if hasattr(verdict, "as_dict"):
                data["verdict"] = _jsonable(verdict.as_dict())
            self.ledger.record_event(deploy_id, "judge", release=result.sha, data=data)
            crash_point("judge")
            if verdict.outcome in ("fail", "pass"):
                break
            if time.monotonic() >= deadline:
                verdict = _Timeout("fail", verdict.table + (
                    f"\nwindow of {s.observe_seconds:g}s ended undecided: the judge did not "
                    "conclude (fail)"))
                break
            self.sleep(s.judge_interval)
        report.status = "ok" if verdict.outcome == "pass" else "failed"
        report.summary = _judge_summary(verdict, s.observe_seconds)
        report.log += verdict.table
        self._close_report(result, report)
        return verdict

    def _close_report(self, result: DeployResult, report: PhaseReport) -> None:
        report.finished_at = time.time()
        result.phases.append(report)
        self.on_phase(report)

    def _judge_failed(self, result: DeployResult, deploy_id: int, sha: str, live: str,
                      switched: list[Host], verdict) -> DeployResult:
        reason = f"judge failed the canary of {sha[:12]}"
        self.ledger.mark_bad(sha, deploy_id, reason)  # first: it holds even if we die below
        self._phase(result, "rollback", lambda: self._converge(
            deploy_id, switched, live, "rollback"))
        data = {"table": verdict.table, "canary": [h.name for h in switched],
                "previous_sha": live,
                "failing": [m.name for m in getattr(verdict, "failing", [])]}
        if hasattr(verdict, "as_dict"):
            data["verdict"] = _jsonable(verdict.as_dict())
        result.incident_id = self.ledger.record_incident(
            reason, deploy_id=deploy_id, sha=sha, data=data, source="deploy")
        result.outcome = "rolled_back"
        result.message = (f"{reason}; canary back on {live[:12]}, release marked bad, "
                          f"incident request {result.incident_id}")
        self.ledger.finish_deploy(deploy_id, "rolled_back", result.message)
        return result

    def _start_failed(self, result: DeployResult, deploy_id: int, sha: str, live: str | None,
                      switched: list[Host], error: HostDidNotStart) -> DeployResult:
        """A host could not start the release: like a judge failure, the release is marked
        bad, the switched hosts go back and an incident is opened, with the host's log."""
        reason = str(error)
        self.ledger.mark_bad(sha, deploy_id, reason)  # first: it holds even if we die below
        result.failure = error.to_json()
        back = ""
        if switched and live:
            try:
                self._phase(result, "rollback", lambda: self._converge(
                    deploy_id, list(dict.fromkeys(switched)), live, "rollback"))
                back = f"; {len(set(switched))} switched host(s) back on {live[:12]}"
            except (DeployFailed, HostError) as exc:
                back = f"; ROLLBACK INCOMPLETE: {exc}"
        data = {"canary": [h.name for h in switched], "previous_sha": live,
                "failing": ["start-up"], "host": error.host, "summary": reason,
                "log_tail": error.log_tail, "table": error.log_tail or error.detail}
        trace = story.last_traceback(error.log_tail)
        if trace:
            data["trace"] = trace
        result.incident_id = self.ledger.record_incident(
            reason, deploy_id=deploy_id, sha=sha, data=data, source="deploy")
        result.outcome = "rolled_back" if live else "failed"
        result.message = (f"{reason}{back}, release marked bad, incident request "
                          f"{result.incident_id}")
        result.message += self._down_note(result, deploy_id)
        self.ledger.finish_deploy(deploy_id, result.outcome, result.message)
        return result

    def _abort(self, result: DeployResult, deploy_id: int, live: str | None,
               switched: list[Host], reason: str) -> DeployResult:
        result.outcome, result.message = "failed", reason
        if switched and live:
            try:
                self._phase(result, "rollback", lambda: self._converge(
                    deploy_id, list(dict.fromkeys(switched)), live, "rollback"))
                result.message += f"; {len(switched)} switched host(s) back on {live[:12]}"
            except (DeployFailed, HostError) as exc:
                result.message += f"; ROLLBACK INCOMPLETE: {exc}"
        self.ledger.finish_deploy(deploy_id, "failed", result.message)
        return result

    def _observe_health(self, hosts: list[Host]) -> str:
        """After the full roll-out every host must stay healthy for the final window."""
        s = self.settings
        deadline = time.monotonic() + s.final_observe_seconds
        rounds = 0
        while True:
            rounds += 1
            for host in hosts:
                health = check_health(host.health_url, s.health_timeout, 3, s.health_interval)
                if not health.healthy:
                    raise HostError(host.name, f"became unhealthy after the switch: "
                                    f"{health.detail}")
            if time.monotonic() >= deadline:
                return f"all {len(hosts)} hosts healthy over {rounds} check(s)"
            self.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _after(self, sha: str) -> None:
        """Keep the last K releases on each host and only the live export in staging."""
        for host in self.settings.hosts:
            try:
                releases.prune_host(self.transports[host.name], self.settings.keep_releases)
            except HostError:
                pass  # pruning is housekeeping; the next deploy tries again
        releases.clean_staging(os.path.join(self.settings.state_dir, "staging"), [sha])
        # Incident reports read files' histories from an index of changes (best effort).
        from greenlight.incidents.change_index import index_deploys
        if getattr(self.ledger, "engine", None) is not None:
            index_deploys(self.ledger.engine, self.settings.repo, [sha])

    # ---- convergence: rollback and crash recovery -----------------------------------------
    def _converge(self, deploy_id: int, hosts: list[Host], target: str, phase: str) -> str:
        """Every host in ``hosts`` onto ``target``: switch if needed, restart, health."""
        errors = []

        def one(host: Host) -> None:
            self._move_host(deploy_id, host, target, phase)

        with ThreadPoolExecutor(max_workers=max(1, self.settings.parallel)) as pool:
            for host, future in [(h, pool.submit(one, h)) for h in hosts]:
                try:
                    future.result()
                except HostError as exc:
                    errors.append(str(exc))
        if errors:
            raise DeployFailed(f"could not bring {len(errors)} host(s) to {target[:12]}: "
                               + "; ".join(errors))
        return f"{len(hosts)} host(s) on {target[:12]}"

    def _recover(self) -> list[DeployResult]:
        """Finish what a killed deploy left: every host it touched back to its start release.

        Called with the lock held, so a deploy still marked ``running`` has no live process.
        """
        out = []
        for record in self.ledger.unfinished_deploys():
            # an interrupted rollback is completed; an interrupted deploy is undone
            target = (record.sha if record.kind == "rollback"
                      else record.previous_sha or record.sha)
            full = self.ledger.deploy(record.id)
            touched = {e.host for e in full.events if e.host and e.phase == "switch"}
            states = self.host_states()
            hosts = [h for h in self.settings.hosts
                     if h.name in touched or states[h.name].get("current") not in (None, target)]
            result = DeployResult("success", target, record.sha, "", record.id)
            try:
                staging = self._stage(target)
                self._phase(result, "recover", lambda: (
                    self._prepare(target, staging),
                    self._converge(record.id, hosts, target, "recover"))[1])
                result.message = (f"interrupted deploy {record.id} of {record.sha[:12]} "
                                  f"recovered: {len(hosts)} host(s) back on {target[:12]}")
                self.ledger.finish_deploy(record.id, "interrupted", result.message)
            except (DeployFailed, HostError) as exc:
                result.outcome = "failed"
                result.message = f"recovery of deploy {record.id} failed: {exc}"
                raise DeployFailed(result.message) from exc
            out.append(result)
        return out


def _judge_summary(verdict, window: float) -> str:
    """``judge: fail — failing: logins per request (after 2.4 s)``: the verdict at a glance,
    for the phase step's line in the UI."""
    summary = f"judge: {verdict.outcome}"
    reason = getattr(verdict, "reason", "")
    elapsed = getattr(verdict, "elapsed_s", None)
    if isinstance(verdict, _Timeout):
        reason, elapsed = f"window of {window:g} s ended undecided", window
    if reason:
        summary += f" — {reason}"
    if isinstance(elapsed, (int, float)):
        summary += f" (after {elapsed:.1f} s)"
    return summary


@dataclass
class _Timeout:
    outcome: str
    table: str


def _jsonable(value: Any) -> Any:
    import json
    import math

    def fix(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        return v
    return json.loads(json.dumps(fix(value), default=str))

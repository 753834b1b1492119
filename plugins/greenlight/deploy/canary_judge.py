"""Adapter from the phases' host-level judge protocol to part B's judge and metrics sources.

The phases call ``observe(canary_hosts, baseline_hosts)`` once per scrape; this object starts
the window at the first call (taking the counters' zero point on every host) and hands the
window's totals to ``Judge.observe``.
"""
from __future__ import annotations

from greenlight.deploy.hosts import DeploySettings, Host


class HostJudge:
    """One canary window: ``Judge`` + ``CanaryWatch`` over the hosts' metrics."""

    def __init__(self, settings: DeploySettings):
        from greenlight.deploy.judge import Judge

        self.settings = settings
        self.judge = Judge.from_settings(settings.judge, max_window_s=settings.observe_seconds,
                                         on_timeout=settings.on_window_end)
        self._watch = None

    def observe(self, canary_hosts: list[Host], baseline_hosts: list[Host]):
        from greenlight.deploy.metrics import CanaryWatch, source_from_settings

        if self._watch is None:
            urls = {h.name: h.metrics_url for h in [*canary_hosts, *baseline_hosts]}
            source = source_from_settings(self.settings.judge, urls, self.judge.specs)
            self._watch = CanaryWatch(source, [h.name for h in canary_hosts],
                                      [h.name for h in baseline_hosts])
            self._watch.start()
        canary, baseline = self._watch.read()
        return self.judge.observe(canary, baseline)


def judge_factory(settings: DeploySettings):
    """A factory for the Deployer: a fresh judge per canary window."""
    return lambda: HostJudge(settings)

"""Adapter from the phases' host-level judge protocol to the judge and its metrics sources.

The phases call ``observe(canary_hosts, baseline_hosts)`` once per scrape; this object starts
the window at the first call (taking the counters' zero point on every host) and hands the
window's totals to ``Judge.observe``. Before the window, ``forecast`` scrapes the baseline
hosts twice and says how long each metric's window will take at their traffic.
"""
from __future__ import annotations

import time
from collections.abc import Callable

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

    def forecast(self, canary_hosts: list[Host], baseline_hosts: list[Host],
                 seconds: float | None = None, sleep: Callable[[float], None] = time.sleep
                 ) -> str:
        """The expected time to verdict per metric, from the baseline hosts' request rates
        over ``seconds`` (three judge intervals by default): text for the deploy log, empty
        when they served nothing. A scrape that fails says so; the window itself decides
        what missing metrics mean."""
        from greenlight.deploy.judge_render import render_forecast
        from greenlight.deploy.metrics import MetricsError, source_from_settings, sum_hosts

        urls = {h.name: h.metrics_url for h in baseline_hosts}
        source = source_from_settings(self.settings.judge, urls, self.judge.specs)
        try:
            source.start()
            started = time.monotonic()
            sleep(3 * self.settings.judge_interval if seconds is None else seconds)
            totals = sum_hosts(source.totals(), list(urls))
        except MetricsError as exc:
            return f"no forecast of the time to verdict: {exc}\n"
        forecasts = self.judge.forecast(totals, time.monotonic() - started, len(urls),
                                        len(canary_hosts), len(baseline_hosts))
        if not any(f.requests_per_s > 0 for f in forecasts):
            return ""
        return render_forecast(forecasts, self.judge.max_window_s)


def judge_factory(settings: DeploySettings):
    """A factory for the Deployer: a fresh judge per canary window."""
    return lambda: HostJudge(settings)

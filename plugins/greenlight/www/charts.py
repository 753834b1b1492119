"""Charts for Greenlight's pages: numbers in, SVG geometry out, drawn by the Jinja2 macros of
``templates/greenlight/charts.html``.

Server-rendered SVG: nothing to download (the machines have no internet and no CDN), nothing
to run in the browser, the same picture in a test's HTML as on screen, and the page's
autoescaping covers every label. This module only scales numbers to pixels and picks ticks;
what to draw is the caller's (the pages take it from the engines). Every chart carries its
numbers as a table for its text alternative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

# Buildbot's result colours, so a green or red here means what it means in the waterfall.
COLOURS = {"canary": "#d9534f", "baseline": "#337ab7", "pass": "#8d4", "fail": "#e88",
           "llr": "#333", "deploy": "#5cb85c", "rollback": "#f0ad4e", "incident": "#d9534f",
           "failed": "#c6c", "suspect": "#8a2be2", "other": "#777"}


@dataclass
class Series:
    """One line: ``points`` (x, y); an optional ``band`` (x, low, high) drawn behind it."""
    name: str
    points: list[tuple[float, float]]
    css: str = "other"
    band: list[tuple[float, float, float]] = field(default_factory=list)
    dashed: bool = False


@dataclass
class Marker:
    """A vertical line at ``x`` (a deploy on the trending chart), a link with a hover text."""
    x: float
    label: str
    href: str = ""
    title: str = ""
    css: str = "deploy"
    dashed: bool = False  # another marker may share its x: a dashed line lets it show


@dataclass
class Tick:
    at: float  # pixels
    label: str


@dataclass
class DrawnSeries:
    name: str
    css: str
    colour: str
    path: str
    band: str  # polygon points, "" when none
    dots: list[tuple[float, float]]
    dashed: bool


@dataclass
class DrawnMarker:
    x: float
    label: str
    href: str
    title: str
    css: str
    colour: str
    label_y: float = 10.0  # below the top: close markers' labels take the next lane
    label_x: float = 0.0
    label_anchor: str = "start"  # "end" near the right edge: the label stays inside
    dashed: bool = False


@dataclass
class LineChart:
    """A chart ready for the ``line_chart`` macro: pixel geometry plus the numbers."""
    id: str
    title: str
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    series: list[DrawnSeries]
    markers: list[DrawnMarker]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_label: str
    y_label: str
    summary: str  # one sentence: what the chart shows (aria-label)
    table_head: list[str]
    table_rows: list[list[str]]
    empty: bool


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1.0
    step = _nice_step(high - low, count)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def number(value: float) -> str:
    """A compact label: 0.25, 1.5k, 12%, never a float's 17 digits."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value / 1000:.0f}k"
    if magnitude >= 1000:
        return f"{value / 1000:.1f}k"
    if magnitude >= 1:
        return f"{value:.3g}"
    return f"{value:.2g}"


def percent(value: float) -> str:
    return f"{value * 100:.3g}%"


def clock(value: float) -> str:
    """Epoch seconds as an HH:MM label (UTC)."""
    return datetime.fromtimestamp(value, timezone.utc).strftime("%H:%M")


def clock_seconds(value: float) -> str:
    """Epoch seconds as HH:MM:SS (UTC), for spans of minutes."""
    return datetime.fromtimestamp(value, timezone.utc).strftime("%H:%M:%S")


def day_clock(value: float) -> str:
    return datetime.fromtimestamp(value, timezone.utc).strftime("%d %b %H:%M")


def seconds(value: float) -> str:
    return f"{value:g} s"


def line_chart(chart_id: str, title: str, series: Sequence[Series], *,
               markers: Sequence[Marker] = (), x_label: str = "", y_label: str = "",
               x_format: Callable[[float], str] = number,
               y_format: Callable[[float], str] = number,
               x_range: tuple[float, float] | None = None, y_floor: float | None = None,
               width: int = 640, height: int = 220, summary: str = "") -> LineChart:
    """Scale the series (and their bands) into a ``width`` × ``height`` SVG box."""
    left, right, top, bottom = 56, 12, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points] + [x for s in series for x, _, _ in s.band]
    xs += [m.x for m in markers]
    ys = [y for s in series for _, y in s.points if math.isfinite(y)]
    ys += [v for s in series for _, lo, hi in s.band for v in (lo, hi) if math.isfinite(v)]
    empty = not any(s.points for s in series)
    x_lo, x_hi = x_range or ((min(xs), max(xs)) if xs else (0.0, 1.0))
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if y_floor is not None:
        y_lo = min(y_lo, y_floor)
    if y_hi <= y_lo:
        y_hi = y_lo + (abs(y_lo) or 1.0)
    y_ticks_values = nice_ticks(y_lo, y_hi)
    y_lo, y_hi = min(y_ticks_values[0], y_lo), max(y_ticks_values[-1], y_hi)

    def px(x: float) -> float:
        return round(left + (x - x_lo) / (x_hi - x_lo) * plot_w, 1)

    def py(y: float) -> float:
        y = min(max(y, y_lo), y_hi)
        return round(top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h, 1)

    drawn = []
    for s in series:
        points = [(px(x), py(y)) for x, y in s.points if math.isfinite(y)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(points))
        band = ""
        if s.band:
            upper = [f"{px(x)},{py(hi)}" for x, _, hi in s.band]
            lower = [f"{px(x)},{py(lo)}" for x, lo, _ in reversed(s.band)]
            band = " ".join(upper + lower)
        drawn.append(DrawnSeries(s.name, s.css, COLOURS.get(s.css, COLOURS["other"]), path,
                                 band, points, s.dashed))
    drawn_markers = [DrawnMarker(px(m.x), m.label, m.href, m.title, m.css,
                                 COLOURS.get(m.css, COLOURS["other"]), dashed=m.dashed)
                     for m in sorted(markers, key=lambda m: m.x) if x_lo <= m.x <= x_hi]
    lanes: list[float] = []  # the right end of the last label in each lane
    for marker in drawn_markers:
        text_w = 7 * len(marker.label) + 4
        room = left + plot_w - marker.x
        marker.label_x, marker.label_anchor = ((marker.x + 3, "start") if room > text_w
                                               else (marker.x - 3, "end"))
        label_left = marker.x if marker.label_anchor == "start" else marker.x - text_w
        lane = next((i for i, end in enumerate(lanes) if end < label_left), len(lanes))
        if lane == len(lanes):
            lanes.append(0.0)
        lanes[lane] = max(marker.x, label_left + text_w) + 2
        marker.label_y = 10.0 + 12.0 * (lane % max(1, int(plot_h // 12) - 1))
    x_ticks = [Tick(px(v), x_format(v)) for v in nice_ticks(x_lo, x_hi, 6)
               if x_lo <= v <= x_hi]
    # a strip of markers alone (no series) has no y axis to read
    y_ticks = [Tick(py(v), y_format(v)) for v in y_ticks_values] if series else []
    empty = empty and not drawn_markers
    head, rows = _table(series, markers, x_format, y_format)
    return LineChart(chart_id, title, width, height, left, top, plot_w, plot_h, drawn,
                     drawn_markers, x_ticks, y_ticks, x_label, y_label,
                     summary or _summary(title, series, markers), head, rows, empty)


def _summary(title: str, series: Sequence[Series], markers: Sequence[Marker]) -> str:
    parts = [f"{s.name}: {len(s.points)} points" for s in series]
    if markers:
        parts.append(f"{len(markers)} markers")
    return f"{title} — " + ", ".join(parts)


def _table(series: Sequence[Series], markers: Sequence[Marker],
           x_format: Callable[[float], str], y_format: Callable[[float], str]
           ) -> tuple[list[str], list[list[str]]]:
    """The chart's numbers, one row per x: the text alternative."""
    head = ["x"]
    columns: list[dict[float, str]] = []
    for s in series:
        head.append(s.name)
        values = {x: y_format(y) for x, y in s.points}
        if s.band:
            head.append(f"{s.name} interval")
            columns.append(values)
            columns.append({x: f"{y_format(lo)} – {y_format(hi)}" for x, lo, hi in s.band})
        else:
            columns.append(values)
    xs = sorted({x for s in series for x, _ in s.points})
    rows = [[x_format(x), *[column.get(x, "") for column in columns]] for x in xs]
    if markers:
        head.append("marker")
        for m in sorted(markers, key=lambda m: m.x):
            rows.append([x_format(m.x), *[""] * len(columns), m.label])
        rows.sort(key=lambda r: r[0])
    return head, rows


@dataclass
class GanttBar:
    x: float
    width: float
    css: str
    colour: str
    title: str


@dataclass
class GanttRow:
    label: str
    y: float
    bars: list[GanttBar]
    note: str = ""


@dataclass
class Gantt:
    """A strip per row (host), bars per part (switch, restart, health, up), for the
    ``gantt`` macro; ``table_rows`` is its text alternative."""
    id: str
    title: str
    width: int
    height: int
    left: int
    rows: list[GanttRow]
    ticks: list[Tick]
    legend: list[tuple[str, str]]
    table_head: list[str]
    table_rows: list[list[str]]


PART_COLOURS = {"switch": "#f0ad4e", "restart": "#5bc0de", "health": "#337ab7", "up": "#8d4",
                "failed": "#e88", "unfinished": "#bbb"}


def gantt(chart_id: str, title: str, rows: Sequence[tuple[str, Sequence[tuple[str, float,
                                                                               float]], str]],
          total: float, width: int = 640, row_height: int = 16) -> Gantt:
    """``rows``: (label, [(part, start s, end s)], note); ``total`` seconds wide."""
    left, right = 110, 12
    plot_w = width - left - right
    total = max(total, 0.001)
    drawn, table = [], []
    for i, (label, parts, note) in enumerate(rows):
        bars = []
        for part, start, end in parts:
            x = left + start / total * plot_w
            w = max((end - start) / total * plot_w, 1.5)
            bars.append(GanttBar(round(x, 1), round(min(w, left + plot_w - x), 1), part,
                                 PART_COLOURS.get(part, "#777"),
                                 f"{label} {part}: {start:.2f}–{end:.2f} s"))
            table.append([label, part, f"{start:.2f}", f"{end:.2f}", f"{end - start:.2f}"])
        drawn.append(GanttRow(label, 8 + i * (row_height + 4), bars, note))
    ticks = [Tick(round(left + v / total * plot_w, 1), f"{v:g} s")
             for v in nice_ticks(0, total, 6) if v <= total]
    height = 8 + len(rows) * (row_height + 4) + 24
    legend = [(name, colour) for name, colour in PART_COLOURS.items()
              if any(b.css == name for r in drawn for b in r.bars)]
    return Gantt(chart_id, title, width, height, left, drawn, ticks, legend,
                 ["host", "part", "start s", "end s", "seconds"], table)


@dataclass
class ForestRow:
    label: str
    y: float
    estimate: float  # pixels
    fixed: tuple[float, float]  # pixels
    always_valid: tuple[float, float] | None  # pixels
    significant: bool


@dataclass
class Forest:
    """Each branch's difference to control as a dot with its intervals (the wide pale bar the
    always-valid one, the dark one the fixed-sample one), a line at no difference; for the
    ``forest`` macro. ``table_rows`` is its text alternative."""
    id: str
    title: str
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    zero: float
    rows: list[ForestRow]
    ticks: list[Tick]
    summary: str
    table_head: list[str]
    table_rows: list[list[str]]


def forest(chart_id: str, title: str,
           rows: Sequence[tuple[str, float, tuple[float, float],
                                tuple[float, float] | None, bool]],
           value_format: Callable[[float], str] = number, width: int = 640,
           row_height: int = 26) -> Forest:
    """``rows``: (label, difference, fixed interval, always-valid interval or None,
    significant); the x axis always shows 0 (no difference)."""
    left, right, top = 110, 16, 8
    plot_w = width - left - right
    values = [0.0] + [v for _, est, fixed, valid, _ in rows
                      for v in (est, *fixed, *(valid or ())) if math.isfinite(v)]
    ticks_at = nice_ticks(min(values), max(values), 5)
    lo, hi = min(ticks_at[0], min(values)), max(ticks_at[-1], max(values))
    if hi <= lo:
        hi = lo + 1.0

    def px(v: float) -> float:
        v = min(max(v, lo), hi)  # an infinite end is drawn to the edge
        return round(left + (v - lo) / (hi - lo) * plot_w, 1)

    drawn, table = [], []
    for i, (label, est, fixed, valid, significant) in enumerate(rows):
        drawn.append(ForestRow(label, top + i * row_height, px(est),
                               (px(fixed[0]), px(fixed[1])),
                               (px(valid[0]), px(valid[1])) if valid else None, significant))
        table.append([label, value_format(est),
                      f"{value_format(fixed[0])} … {value_format(fixed[1])}",
                      f"{value_format(valid[0])} … {value_format(valid[1])}" if valid else "—",
                      "yes" if significant else "no"])
    height = top + len(rows) * row_height + 26
    summary = f"{title} — " + "; ".join(
        f"{r[0]}: {r[1]} (fixed {r[2]}, always-valid {r[3]})" for r in table)
    return Forest(chart_id, title, width, height, left, top, plot_w, px(0.0), drawn,
                  [Tick(px(v), value_format(v)) for v in ticks_at], summary,
                  ["branch", "difference", "fixed interval", "always-valid interval",
                   "significant"], table)


@dataclass
class ShareBar:
    label: str
    y: float
    expected_w: float
    observed_w: float
    expected: str
    observed: str


@dataclass
class Shares:
    """Expected against observed share of users per branch (the sample-ratio check), for the
    ``shares`` macro."""
    id: str
    title: str
    width: int
    height: int
    left: int
    plot_w: int
    bars: list[ShareBar]
    ticks: list[Tick]
    mismatch: bool
    summary: str
    table_head: list[str]
    table_rows: list[list[str]]


def shares(chart_id: str, title: str, rows: Sequence[tuple[str, float, float, int, float]],
           mismatch: bool, width: int = 640) -> Shares:
    """``rows``: (branch, expected share, observed share, observed users, expected users)."""
    left, right = 110, 70
    plot_w = width - left - right
    top_share = max([0.5] + [max(e, o) for _, e, o, _, _ in rows])
    scale = nice_ticks(0.0, top_share, 4)
    top = max(scale[-1], top_share)
    bars, table = [], []
    for i, (label, expected, observed, users, expected_users) in enumerate(rows):
        bars.append(ShareBar(label, 6 + i * 30, round(expected / top * plot_w, 1),
                             round(observed / top * plot_w, 1), percent(expected),
                             percent(observed)))
        table.append([label, percent(expected), percent(observed), f"{expected_users:,.0f}",
                      f"{users:,}"])
    height = 6 + len(rows) * 30 + 22
    summary = f"{title} — " + "; ".join(f"{r[0]}: expected {r[1]}, observed {r[2]}"
                                         for r in table)
    return Shares(chart_id, title, width, height, left, plot_w, bars,
                  [Tick(round(left + v / top * plot_w, 1), percent(v)) for v in scale],
                  mismatch, summary,
                  ["branch", "expected share", "observed share", "expected users",
                   "observed users"], table)

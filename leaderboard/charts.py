"""Geometry for the page's inline SVG charts (the templates draw it; every text goes through
jinja2's autoescape). Coordinates are pre-formatted strings, so the page is byte-stable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def fmt(x: float, digits: int = 1) -> str:
    """Fixed-point text for a coordinate; never '-0.0'."""
    text = f"{x:.{digits}f}"
    return "0." + "0" * digits if text.lstrip("-").strip("0.") == "" else text


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


@dataclass
class Scale:
    lo: float
    hi: float
    start: float  # pixel at lo
    end: float  # pixel at hi

    def __call__(self, value: float) -> float:
        value = min(max(value, self.lo), self.hi)
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def is_fraction_scale(values: Sequence[float]) -> bool:
    """Metrics whose values all lie in [0, 1] are shown as percentages."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and all(0.0 <= v <= 1.0 for v in finite)


def value_text(value: float, percent: bool) -> str:
    if not math.isfinite(value):
        return "—"
    return fmt(100.0 * value, 1) if percent else f"{value:.4g}"


def tick_text(value: float, percent: bool) -> str:
    return f"{round(100.0 * value, 6):g}" if percent else f"{value:g}"


def axis_range(values: Sequence[float], percent: bool) -> tuple[float, float]:
    if percent:
        return 0.0, 1.0
    finite = [v for v in values if math.isfinite(v)] or [0.0, 1.0]
    lo, hi = min(min(finite), 0.0), max(finite)
    return (lo, hi if hi > lo else lo + 1.0)


# ---------------------------------------------------------------------------------------------
# Per-column bar chart
# ---------------------------------------------------------------------------------------------


@dataclass
class Bar:
    model: str
    access: str
    y: str
    width: str
    ci_x1: str
    ci_x2: str
    has_ci: bool
    text: str
    text_x: str
    marked: bool  # measured differently from the column's majority


@dataclass
class BarChart:
    width: int
    height: int
    label_width: int
    row_height: int
    axis_y: str
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[str, str]] = field(default_factory=list)  # (x, label)


def bar_chart(rows: Sequence[tuple[str, str, float, float, float, bool]], percent: bool) -> BarChart:
    """rows: (model, access, value, ci_low, ci_high, marked), drawn in the given order."""
    label_width, row_height, width, top = 230, 18, 760, 8
    values = [v for r in rows for v in (r[2], r[3], r[4])]
    lo, hi = axis_range(values, percent)
    scale = Scale(lo, hi, label_width + 8, width - 56)
    chart = BarChart(width, top + row_height * len(rows) + 28, label_width, row_height,
                     fmt(top + row_height * len(rows) + 2))
    for k, (model, access, value, low, high, marked) in enumerate(rows):
        x0, x = scale(max(lo, 0.0) if lo < 0 <= hi else lo), scale(value)
        has_ci = math.isfinite(low) and math.isfinite(high)
        chart.bars.append(Bar(
            model=model, access=access, y=fmt(top + k * row_height), width=fmt(max(x - x0, 0.0)),
            ci_x1=fmt(scale(low) if has_ci else x), ci_x2=fmt(scale(high) if has_ci else x), has_ci=has_ci,
            text=value_text(value, percent), text_x=fmt(max(x, scale(high) if has_ci else x) + 4),
            marked=marked,
        ))
    for tick in nice_ticks(lo, hi, 5):
        chart.ticks.append((fmt(scale(tick)), tick_text(tick, percent)))
    return chart


# ---------------------------------------------------------------------------------------------
# Score vs cost, with the Pareto front
# ---------------------------------------------------------------------------------------------


@dataclass
class Point:
    model: str
    access: str
    x: str
    y: str
    cost_text: str
    score_text: str
    complete: bool  # averaged over every column (only these can be on the front)
    on_front: bool


@dataclass
class CostChart:
    width: int
    height: int
    left: int
    top: int
    plot_right: int
    plot_bottom: int
    points: list[Point] = field(default_factory=list)
    front_path: str = ""
    x_ticks: list[tuple[str, str]] = field(default_factory=list)
    y_ticks: list[tuple[str, str]] = field(default_factory=list)
    zero_lane: str | None = None  # x of the "$0" lane when some models cost nothing
    labels: list[tuple[str, str, str, str]] = field(default_factory=list)  # (x, y, model, access) by front points


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Models not dominated by a cheaper-or-equal, better-or-equal other (cost ascending)."""
    front, best = [], -math.inf
    for model, _, score in sorted(points, key=lambda p: (p[1], -p[2], p[0])):
        if score > best:
            front.append(model)
            best = score
    return front


def _money(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}".rstrip("0").rstrip(".") if value < 100 else f"${value:,.0f}"
    return f"${value:.3g}"


def cost_chart(rows: Sequence[tuple[str, str, float, float, bool]], percent: bool) -> CostChart | None:
    """rows: (model, access, cost per 1k items, average score, complete). None when nothing to plot."""
    usable = [r for r in rows if math.isfinite(r[2]) and math.isfinite(r[3]) and r[2] >= 0]
    if not usable:
        return None
    chart = CostChart(width=760, height=420, left=64, top=16, plot_right=740, plot_bottom=370)
    positive = [r[2] for r in usable if r[2] > 0]
    has_zero = any(r[2] == 0 for r in usable)
    plot_left = chart.left + (48 if has_zero else 12)
    if positive:
        lo_exp = math.floor(math.log10(min(positive)))
        hi_exp = math.ceil(math.log10(max(positive)))
        if hi_exp == lo_exp:
            hi_exp += 1
        log_scale = Scale(float(lo_exp), float(hi_exp), plot_left, chart.plot_right)
        for e in range(lo_exp, hi_exp + 1):
            chart.x_ticks.append((fmt(log_scale(float(e))), _money(10.0**e)))
    zero_x = float(chart.left + 20)
    if has_zero:
        chart.zero_lane = fmt(zero_x)

    def x_of(cost: float) -> float:
        return zero_x if cost == 0 else log_scale(math.log10(cost))

    scores = [r[3] for r in usable]
    lo, hi = min(scores), max(scores)
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    if percent:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    y_scale = Scale(lo, hi, chart.plot_bottom, chart.top)
    for tick in nice_ticks(lo, hi, 5):
        chart.y_ticks.append((fmt(y_scale(tick)), tick_text(tick, percent)))
    front = set(pareto_front([(r[0], r[2], r[3]) for r in usable if r[4]]))
    for model, access, cost, score, complete in sorted(usable, key=lambda r: r[0]):
        chart.points.append(Point(
            model=model, access=access, x=fmt(x_of(cost)), y=fmt(y_scale(score)),
            cost_text=_money(cost), score_text=value_text(score, percent), complete=complete,
            on_front=model in front,
        ))
    on_front = sorted((p for p in usable if p[0] in front), key=lambda r: (r[2], -r[3], r[0]))
    steps: list[str] = []
    steps_y = ""
    for k, (model, access, cost, score, _) in enumerate(on_front):
        x, y = x_of(cost), y_scale(score)
        if k:  # a step: cost rises first, then the score
            steps.append(f"L{fmt(x)},{steps_y}")
        steps.append(("M" if not k else "L") + f"{fmt(x)},{fmt(y)}")
        steps_y = fmt(y)
        chart.labels.append((fmt(x + 7), fmt(y - 6), model, access))
    chart.front_path = " ".join(steps)
    return chart

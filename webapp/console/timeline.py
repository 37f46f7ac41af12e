"""A workflow run drawn to scale in time: the geometry of the SVG the workflow page shows.

Bars come from the event log, not from the step rows: a row keeps only its latest attempt,
the log keeps every attempt and every undo with its time. One row per step, grouped by stage
(steps of a stage run side by side, so their bars overlap in time); the upper half of a row
holds the forward attempts, the lower half the compensation attempts. The template only draws
what is computed here, and Jinja escapes every text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.engine import EventKind

WIDTH = 980
LABEL_WIDTH = 210
RIGHT_MARGIN = 20
AXIS_HEIGHT = 26
ROW_HEIGHT = 34
STAGE_GAP = 8
MIN_BAR = 2.0
#: The width of a character of a bar's label, near enough to decide what fits (10 px font).
CHAR_WIDTH = 6.0

#: How a forward attempt ended, by the event that ended it.
_FORWARD_ENDS = {
    EventKind.STEP_COMPLETED.value: "ok",
    EventKind.STEP_RETRY_SCHEDULED.value: "retry",
    EventKind.STEP_DEFERRED.value: "deferred",
    EventKind.STEP_FAILED.value: "failed",
    EventKind.STEP_SETTLED_DURING_ROLLBACK.value: "settled",
}
_UNDO_ENDS = {
    EventKind.COMPENSATION_COMPLETED.value: "undo",
    EventKind.COMPENSATION_RETRY_SCHEDULED.value: "undo-retry",
    EventKind.COMPENSATION_DEFERRED.value: "undo-deferred",
    EventKind.COMPENSATION_FAILED.value: "undo-failed",
}
_OUTCOME_WORDS = {
    "ok": "completed",
    "retry": "failed, retried",
    "deferred": "waited for a free slot, runs again (not counted)",
    "failed": "failed for good",
    "settled": "came back during the rollback",
    "undo": "undone",
    "undo-retry": "undo failed, retried",
    "undo-deferred": "undo waited for a free slot, runs again (not counted)",
    "undo-failed": "undo failed for good",
    "running": "still running",
    "unknown": "no outcome recorded",
}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # a CSS class: ok, retry, failed, settled, running, unknown, undo, undo-*
    label: str
    label_x: float
    label_anchor: str
    title: str


@dataclass(frozen=True)
class Row:
    name: str
    system: str
    status: str
    y: float


@dataclass(frozen=True)
class Band:
    """The rows of one stage: its steps may run at the same time."""

    y: float
    height: float
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    label: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass
class Timeline:
    width: int
    height: float
    plot_x: float
    plot_width: float
    axis_y: float
    span_seconds: float
    rows: list[Row] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min {rest:.0f} s"


def _tick_step(span: float, wanted: int = 6) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``wanted`` ticks."""
    raw = span / wanted
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _short(text: str | None, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class _Span:
    step: str
    undo: bool
    attempt: int | None
    start: datetime
    end: datetime
    kind: str
    error: str | None


def _spans(events: Sequence[Any], end_of_run: datetime, active: bool) -> list[_Span]:
    """Each attempt (forward or undo) of each step, from its start event to its end event."""
    spans: list[_Span] = []
    open_: dict[tuple[str, bool], tuple[datetime, int | None]] = {}
    for event in events:
        if event.step_name is None:
            continue
        undo = event.kind.startswith("compensation_")
        key = (event.step_name, undo)
        if event.kind in (EventKind.STEP_STARTED.value, EventKind.COMPENSATION_STARTED.value):
            open_[key] = (event.created_at, event.attempt)
            continue
        ends = _UNDO_ENDS if undo else _FORWARD_ENDS
        if event.kind not in ends:
            continue
        start, attempt = open_.pop(key, (event.created_at, event.attempt))
        spans.append(
            _Span(
                event.step_name,
                undo,
                attempt if attempt is not None else event.attempt,
                start,
                event.created_at,
                ends[event.kind],
                event.message,
            )
        )
    for (step, undo), (start, attempt) in open_.items():
        kind = "running" if active else "unknown"
        spans.append(_Span(step, undo, attempt, start, end_of_run, kind, None))
    return spans


def build(
    steps: Iterable[Any],
    stage_of: dict[str, int | None],
    events: Sequence[Any],
    *,
    active: bool,
    now: datetime | None = None,
) -> Timeline | None:
    """The timeline of one run, from its events (oldest first) and the workflow's steps."""
    if not events:
        return None
    now = now or datetime.now(UTC)
    start = events[0].created_at
    last = max(event.created_at for event in events)
    end = max(last, now) if active else last
    span = max((end - start).total_seconds(), 0.001)

    plot_x = float(LABEL_WIDTH)
    plot_width = float(WIDTH - LABEL_WIDTH - RIGHT_MARGIN)

    def x_of(moment: datetime) -> float:
        return plot_x + (moment - start).total_seconds() / span * plot_width

    ordered = sorted(steps, key=lambda s: (stage_of.get(s.name) or 0, s.position))
    timeline = Timeline(
        width=WIDTH,
        height=0,
        plot_x=plot_x,
        plot_width=plot_width,
        axis_y=AXIS_HEIGHT - 6,
        span_seconds=span,
    )
    y = float(AXIS_HEIGHT)
    row_y: dict[str, float] = {}
    stage: int | None = -1
    band_start = y
    for step in ordered:
        this_stage = stage_of.get(step.name)
        if this_stage != stage:
            if stage != -1:
                timeline.bands.append(Band(band_start, y - band_start, _stage_label(stage)))
                y += STAGE_GAP
            stage, band_start = this_stage, y
        row_y[step.name] = y
        timeline.rows.append(Row(step.name, step.system, str(step.status), y))
        y += ROW_HEIGHT
    if ordered:
        timeline.bands.append(Band(band_start, y - band_start, _stage_label(stage)))
    timeline.height = y + 6

    pieces = sorted(
        (p for p in _spans(events, end, active) if p.step in row_y),
        key=lambda p: (p.step, p.undo, p.start),
    )
    for index, piece in enumerate(pieces):
        x = x_of(piece.start)
        width = max(x_of(piece.end) - x, MIN_BAR)
        seconds = (piece.end - piece.start).total_seconds()
        what = "undo" if piece.undo else "attempt"
        title = (
            f"{piece.step} {what} {piece.attempt or '?'}: {format_seconds(seconds)}, "
            f"{_OUTCOME_WORDS[piece.kind]}" + (f": {piece.error}" if piece.error else "")
        )
        # The label runs up to the next bar of the same lane (a retry), else to the plot's end;
        # what does not fit is shortened, and the bar's tooltip keeps everything.
        following = pieces[index + 1] if index + 1 < len(pieces) else None
        same_lane = following is not None and (following.step, following.undo) == (
            piece.step,
            piece.undo,
        )
        room = (x_of(following.start) if same_lane else plot_x + plot_width) - (x + width) - 6
        label = _label(piece, seconds, room)
        fits_right = len(label) * CHAR_WIDTH <= room
        if not fits_right and not same_lane:
            # Near the plot's end: the label goes left of its bar, in full.
            label = _label(piece, seconds, x - plot_x - 6)
        top = row_y[piece.step] + (ROW_HEIGHT / 2 if piece.undo else 3)
        timeline.bars.append(
            Bar(
                x=x,
                y=top,
                width=width,
                height=ROW_HEIGHT / 2 - 4,
                kind=piece.kind,
                label=label,
                label_x=x + width + 4 if fits_right or same_lane else x - 4,
                label_anchor="start" if fits_right or same_lane else "end",
                title=title,
            )
        )

    step_size = _tick_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        timeline.ticks.append(Tick(plot_x + tick / span * plot_width, format_seconds(tick)))
        tick += step_size
    for event in events:
        if event.kind == EventKind.WORKFLOW_STATUS.value and event.to_status == "rolling_back":
            timeline.markers.append(Marker(x_of(event.created_at), "rollback"))
        elif event.kind == EventKind.CANCEL_REQUESTED.value:
            timeline.markers.append(Marker(x_of(event.created_at), "cancel"))
    return timeline


def _label(piece: _Span, seconds: float, room: float) -> str:
    """The longest of: attempt, duration and error; attempt and duration; the attempt alone
    that fits in ``room`` pixels (the attempt number is always shown)."""
    number = f"{'undo ' if piece.undo else ''}#{piece.attempt or '?'}"
    timed = f"{number} {format_seconds(seconds)}"
    candidates = [timed, number]
    if piece.error and piece.kind in ("failed", "retry", "undo-failed", "undo-retry"):
        candidates.insert(0, f"{timed} — {_short(piece.error, 48)}")
    for candidate in candidates:
        if len(candidate) * CHAR_WIDTH <= room:
            return candidate
    return number


def _stage_label(stage: int | None) -> str:
    return "stage ?" if stage is None else f"stage {stage}"

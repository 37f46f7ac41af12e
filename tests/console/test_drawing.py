"""The timeline and the charts are pure geometry: checked here without a browser or a database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from webapp.console import charts, timeline

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass
class Step:
    name: str
    system: str
    position: int
    status: str = "completed"


@dataclass
class Event:
    seconds: float
    kind: str
    step_name: str | None = None
    attempt: int | None = None
    message: str | None = None
    to_status: str | None = None

    @property
    def created_at(self) -> datetime:
        return T0 + timedelta(seconds=self.seconds)


STEPS = [Step("a", "database", 0), Step("b", "radius", 1), Step("c", "netbox", 2)]
STAGES: dict[str, int | None] = {"a": 0, "b": 0, "c": 1}


def _bars(drawing: timeline.Timeline, kind: str) -> list[timeline.Bar]:
    return [bar for bar in drawing.bars if bar.kind == kind]


def test_attempts_retries_and_undos_are_bars_to_scale():
    # Given a run where b failed once, was retried, c failed for good and a and b were undone
    events = [
        Event(0.0, "workflow_created"),
        Event(0.0, "step_started", "a", 1),
        Event(0.0, "step_started", "b", 1),
        Event(1.0, "step_completed", "a", 1),
        Event(1.0, "step_retry_scheduled", "b", 1, "timeout"),
        Event(2.0, "step_started", "b", 2),
        Event(4.0, "step_completed", "b", 2),
        Event(4.0, "step_started", "c", 1),
        Event(5.0, "step_failed", "c", 1, "prefix full"),
        Event(5.0, "workflow_status", to_status="rolling_back"),
        Event(5.0, "compensation_started", "b", 1),
        Event(6.0, "compensation_completed", "b", 1),
        Event(6.0, "compensation_started", "a", 1),
        Event(8.0, "compensation_completed", "a", 1),
    ]

    drawing = timeline.build(STEPS, STAGES, events, active=False)

    assert drawing is not None
    # Then every attempt is a bar, coloured by how it ended
    # (the retried attempt's error does not fit before attempt 2: its tooltip has it)
    assert [b.label for b in _bars(drawing, "retry")] == ["#1 1.00 s"]
    assert "timeout" in _bars(drawing, "retry")[0].title
    assert [b.label for b in _bars(drawing, "failed")] == ["#1 1.00 s — prefix full"]
    assert len(_bars(drawing, "ok")) == 2
    assert sorted(b.label for b in _bars(drawing, "undo")) == ["undo #1 1.00 s", "undo #1 2.00 s"]
    # And widths are proportional to time (8 s over the plot)
    per_second = drawing.plot_width / 8
    (retried,) = _bars(drawing, "retry")
    assert abs(retried.width - per_second) < 0.01
    assert abs(retried.x - drawing.plot_x) < 0.01
    # And undo bars sit in the lower half of their step's row, attempts in the upper half
    rows = {row.name: row.y for row in drawing.rows}
    for bar in _bars(drawing, "undo"):
        assert bar.y >= min(rows.values()) + timeline.ROW_HEIGHT / 2 - 0.01
    # And stage 0 (a, b side by side) is one band, stage 1 another
    assert [band.label for band in drawing.bands] == ["stage 0", "stage 1"]
    assert [m.label for m in drawing.markers] == ["rollback"]
    assert "prefix full" in _bars(drawing, "failed")[0].title


def test_an_attempt_still_running_reaches_now():
    events = [Event(0.0, "workflow_created"), Event(0.0, "step_started", "a", 1)]

    drawing = timeline.build(STEPS, STAGES, events, active=True, now=T0 + timedelta(seconds=3))

    assert drawing is not None
    (running,) = _bars(drawing, "running")
    assert abs(running.x + running.width - (drawing.plot_x + drawing.plot_width)) < 0.01


def test_no_events_no_timeline():
    assert timeline.build(STEPS, STAGES, [], active=False) is None


def test_bars_are_scaled_to_the_largest_or_to_a_given_maximum():
    items = [
        charts.Item("x", [charts.Part(2, "ok", "x")], "2"),
        charts.Item("y", [charts.Part(1, "ok", "y"), charts.Part(1, "failed", "y")], "2"),
        charts.Item("z", [charts.Part(0, "ok", "z")], "0"),
    ]

    chart = charts.bar_chart("t", items)
    fixed = charts.bar_chart("t", items, scale_max=4)

    full = chart.plot_width
    assert [sum(s.width for s in row.segments) for row in chart.rows] == [full, full, 0]
    assert fixed.rows[0].segments[0].width == full / 2
    assert [s.css for s in chart.rows[1].segments] == ["ok", "failed"]

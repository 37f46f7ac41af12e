"""Fixtures: one simulator process per module (``sim_process``), reset per test (``sim``)."""

from tests.support.simulator_process import sim, sim_process  # noqa: F401

"""Step tasks for the NAS (queue ``nas``): RFC 5176 Disconnect-Requests."""

from orchestrator.steps.nas import DisconnectSessions
from tasks.app import app
from tasks.base import step_task

disconnect_sessions = step_task(app, "tasks.nas.disconnect_sessions", DisconnectSessions())

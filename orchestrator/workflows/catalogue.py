"""Step definitions that several workflow types use: each names its task and its undo once.

A workflow type picks the ones it needs, names the step, and says what it depends on. What a
step does with the workflow's input is the business of its behaviour (orchestrator/steps/).
"""

from __future__ import annotations

from orchestrator.definitions import StepDefinition

#: Removal in a forward recovery: a system that is down is waited for (with backoff, until the
#: workflow's deadline), never answered by re-creating what was removed.
PATIENT = 1000


def move_radius_group(name: str, depends_on: tuple[str, ...] = ()) -> StepDefinition:
    return StepDefinition(
        name=name,
        system="radius",
        task="tasks.radius.move_group",
        compensation="tasks.radius.move_group_back",
        depends_on=depends_on,
        timeout=15,
    )


def disconnect_sessions(name: str, depends_on: tuple[str, ...] = ()) -> StepDefinition:
    """Ends the subscriber's live sessions so a changed profile applies now.

    It cannot be undone (a session ended stays ended), so a workflow that can roll back puts it
    last, after its commit step: nothing that could still fail may follow it, or a rollback
    would leave a session logged in with the profile that was just taken back.
    """
    return StepDefinition(
        name=name,
        system="nas",
        task="tasks.nas.disconnect_sessions",
        # The subscriber's router logs in again by itself: nothing to undo.
        compensation=None,
        irreversible=True,
        depends_on=depends_on,
        timeout=15,
    )


def disable_onu(name: str, depends_on: tuple[str, ...] = ()) -> StepDefinition:
    return StepDefinition(
        name=name,
        system="access",
        task="tasks.access.disable_onu",
        compensation="tasks.access.enable_onu_again",
        depends_on=depends_on,
        timeout=30,
    )


def enable_onu(name: str, depends_on: tuple[str, ...] = ()) -> StepDefinition:
    return StepDefinition(
        name=name,
        system="access",
        task="tasks.access.enable_onu",
        compensation="tasks.access.disable_onu_again",
        depends_on=depends_on,
        timeout=30,
    )


def set_subscriber_status(name: str, depends_on: tuple[str, ...] = ()) -> StepDefinition:
    return StepDefinition(
        name=name,
        system="database",
        task="tasks.database.set_subscriber_status",
        compensation="tasks.database.restore_subscriber_status",
        depends_on=depends_on,
        timeout=15,
    )

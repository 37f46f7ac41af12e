"""Workflow definitions fail when declared, never half-way through a provisioning."""

from __future__ import annotations

import pytest

from orchestrator.definitions import (
    PROVISION_SUBSCRIBER,
    DefinitionError,
    DefinitionRegistry,
    StepDefinition,
    WorkflowDefinition,
    registry,
)


def step(name: str, *depends_on: str, compensation: str | None = "tasks.x.undo") -> StepDefinition:
    return StepDefinition(
        name=name,
        system="x",
        task=f"tasks.x.{name}",
        compensation=compensation,
        depends_on=depends_on,
    )


def test_a_step_declared_twice_is_refused():
    with pytest.raises(DefinitionError, match="declared twice"):
        WorkflowDefinition("w", 1, (step("a"), step("a")))


def test_an_unknown_or_forward_dependency_is_refused():
    with pytest.raises(DefinitionError, match="not an earlier step"):
        WorkflowDefinition("w", 1, (step("a", "b"), step("b")))
    with pytest.raises(DefinitionError, match="not an earlier step"):
        WorkflowDefinition("w", 1, (step("a", "a"),))


def test_a_missing_compensation_must_be_declared_irreversible():
    with pytest.raises(DefinitionError, match="no compensation"):
        WorkflowDefinition("w", 1, (step("a", compensation=None),))
    irreversible = StepDefinition(
        name="notify", system="x", task="tasks.x.notify", compensation=None, irreversible=True
    )
    assert WorkflowDefinition("w", 1, (irreversible,)).step("notify") is irreversible


def test_a_name_registered_twice_is_refused():
    local = DefinitionRegistry()
    local.register(WorkflowDefinition("w", 1, (step("a"),)))
    with pytest.raises(DefinitionError, match="already registered"):
        local.register(WorkflowDefinition("w", 2, (step("a"),)))


def test_unregistered_tasks_are_named():
    local = DefinitionRegistry()
    local.register(WorkflowDefinition("w", 1, (step("a"),)))
    with pytest.raises(DefinitionError, match=r"tasks\.x\.a, tasks\.x\.undo"):
        local.verify_tasks(lambda name: False)


def test_every_task_the_real_definitions_name_is_registered(celery_app):
    celery_app.loader.import_default_modules()  # what a worker does at start
    registry.verify_tasks(lambda name: name in celery_app.tasks)
    assert [s.name for s in PROVISION_SUBSCRIBER.steps] == [
        "create_customer",
        "create_subscriber",
        "create_radius_account",
        "allocate_ip",
        "activate_onu",
        "configure_cpe",
        "create_billing_service",
    ]

"""Workflow definitions fail when declared, never half-way through a provisioning."""

from __future__ import annotations

import pytest

from orchestrator.definitions import (
    DefinitionError,
    DefinitionRegistry,
    StepDefinition,
    WorkflowDefinition,
    registry,
)
from orchestrator.workflows.provision_subscriber import DEFINITION as PROVISION_SUBSCRIBER


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


def test_a_version_registered_twice_is_refused():
    local = DefinitionRegistry()
    local.register(WorkflowDefinition("w", 1, (step("a"),)))
    with pytest.raises(DefinitionError, match="already registered"):
        local.register(WorkflowDefinition("w", 1, (step("b"),)))


def test_versions_live_side_by_side_and_new_work_takes_the_latest():
    local = DefinitionRegistry()
    v1 = local.register(WorkflowDefinition("w", 1, (step("a"),)))
    v2 = local.register(WorkflowDefinition("w", 2, (step("a"), step("b", "a"))))
    assert local.get("w") is v2
    assert local.get("w", 1) is v1
    assert local.get("w", 2) is v2
    with pytest.raises(DefinitionError, match="v3 is not registered"):
        local.get("w", 3)
    with pytest.raises(DefinitionError, match="older than v2"):
        local.register(WorkflowDefinition("w", 0, (step("a"),)))


def test_stages_come_from_the_dependencies_not_from_the_order_of_declaration():
    definition = WorkflowDefinition(
        "w", 1, (step("a"), step("b"), step("c", "a"), step("d", "b", "c"), step("e"))
    )
    assert definition.stages() == [("a", "b", "e"), ("c",), ("d",)]
    assert definition.dependents("a") == ("c",)
    assert definition.dependents("d") == ()


def test_unregistered_tasks_are_named():
    local = DefinitionRegistry()
    local.register(WorkflowDefinition("w", 1, (step("a"),)))
    with pytest.raises(DefinitionError, match=r"tasks\.x\.a, tasks\.x\.undo"):
        local.verify_tasks(lambda name: False)


def test_every_task_the_real_definitions_name_is_registered(celery_app):
    celery_app.loader.import_default_modules()  # what a worker does at start
    registry.verify_tasks(lambda name: name in celery_app.tasks)
    assert PROVISION_SUBSCRIBER.stages() == [
        (
            "activate_onu",
            "configure_cpe",
            "create_radius_account",
            "allocate_ip",
            "allocate_ipv6_prefix",
            "create_customer",
        ),
        ("create_subscriber", "assign_framed_ip"),
        ("create_billing_service",),
    ]
    # Each step touches one system.
    assert {s.name: s.system for s in PROVISION_SUBSCRIBER.steps}["assign_framed_ip"] == "radius"

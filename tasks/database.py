"""Step and compensation tasks for our own database (queue ``database``)."""

from orchestrator.steps.database import CreateBillingService, CreateCustomer, CreateSubscriber
from tasks.app import app
from tasks.base import compensation_task, step_task

create_customer = step_task(app, "tasks.database.create_customer", CreateCustomer())
delete_customer = compensation_task(app, "tasks.database.delete_customer", CreateCustomer())

create_subscriber = step_task(app, "tasks.database.create_subscriber", CreateSubscriber())
delete_subscriber = compensation_task(app, "tasks.database.delete_subscriber", CreateSubscriber())

create_billing_service = step_task(
    app, "tasks.database.create_billing_service", CreateBillingService()
)
delete_billing_service = compensation_task(
    app, "tasks.database.delete_billing_service", CreateBillingService()
)

"""Step and compensation tasks for our own database (queue ``database``)."""

from orchestrator.steps.database import (
    ChangeBillingPlan,
    CreateBillingService,
    CreateCustomer,
    CreateSubscriber,
    EndBilling,
    MarkTerminated,
    SetSubscriberStatus,
)
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

_status = SetSubscriberStatus()
set_subscriber_status = step_task(app, "tasks.database.set_subscriber_status", _status)
restore_subscriber_status = compensation_task(
    app, "tasks.database.restore_subscriber_status", _status
)

_billing_plan = ChangeBillingPlan()
change_billing_plan = step_task(app, "tasks.database.change_billing_plan", _billing_plan)
restore_billing_plan = compensation_task(app, "tasks.database.restore_billing_plan", _billing_plan)

end_billing = step_task(app, "tasks.database.end_billing", EndBilling())
mark_terminated = step_task(app, "tasks.database.mark_terminated", MarkTerminated())

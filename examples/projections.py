"""An example projection: orders and revenue per customer, folded from the event log.

Try it (EXAMPLES=true, the default of ``make run``)::

    manage.py emit example.order.placed --data '{"customer": "acme", "amount": "19.90"}'
    manage.py rebuild_projection example_customer_orders
"""

from __future__ import annotations

from decimal import Decimal

from events.models import Event
from events.projections import projection
from examples.models import CustomerOrders


@projection(on="example.order.*", models=[CustomerOrders])
def example_customer_orders(event: Event) -> None:
    customer = str(event.data.get("customer", ""))
    if not customer:
        return  # nothing to fold: an order without a customer
    row, _ = CustomerOrders.objects.get_or_create(customer=customer)
    amount = Decimal(str(event.data.get("amount", "0")))
    if event.type == "example.order.placed":
        row.orders += 1
        row.revenue += amount
    elif event.type == "example.order.cancelled":
        row.cancelled += 1
        row.revenue -= amount
    row.save(update_fields=["orders", "cancelled", "revenue"])

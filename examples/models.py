"""Models of the examples: what the example projection (examples/projections.py) folds into."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class CustomerOrders(models.Model):
    """Orders and revenue per customer, kept up to date from ``example.order.*`` events."""

    customer = models.CharField(max_length=200, unique=True)
    orders = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["customer"]
        verbose_name_plural = "customer orders (example projection)"

    def __str__(self) -> str:
        return self.customer

"""The operations page's rolled-up counts (``operations.rollup`` has the rules)."""

from django.db import models

from tenants.models import Tenant


class StateCount(models.Model):
    """How many of a tenant's messages created in a five-minute bucket are in a state now."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket = models.DateTimeField(help_text="The bucket's start (UTC, five minutes).")
    state = models.CharField(max_length=20)
    n = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "bucket", "state"], name="statecount_once")
        ]
        indexes = [models.Index(fields=["bucket"], name="statecount_bucket")]

    def __str__(self) -> str:
        return f"{self.bucket:%H:%M} {self.state}: {self.n}"


class RollupMark(models.Model):
    """Up to when a rollup has counted (one row per rollup; its lock serialises two runs)."""

    name = models.CharField(max_length=40, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%H:%M:%S}"

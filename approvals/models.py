from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from automation.engine import clock
from automation.lib.ids import uuid7


class ApprovalQuerySet(models.QuerySet):
    def pending(self) -> ApprovalQuerySet:
        return self.filter(status=Approval.Status.PENDING)

    def inbox(self, user, at=None) -> ApprovalQuerySet:
        """Approvals the user may decide: assigned to them or to one of their groups, or to a
        person who named them their delegate for a period that includes ``at`` (now)."""
        principals = Delegation.objects.active(at).filter(delegate=user).values("user")
        return self.filter(
            models.Q(assignee_users=user)
            | models.Q(assignee_groups__in=user.groups.all())
            | models.Q(assignee_users__in=principals)
            | models.Q(assignee_groups__user__in=principals)
        ).distinct()


class Approval(models.Model):
    """A run's question to people: approve or reject, with a comment. The run waits for it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    class OnTimeout(models.TextChoices):
        REJECT = "reject", "Reject"
        APPROVE = "approve", "Approve"
        ESCALATE = "escalate", "Escalate"

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    run = models.ForeignKey("automation.Run", on_delete=models.CASCADE, related_name="approvals")
    step_id = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="Data shown to the approver.")
    assignees = models.JSONField(
        default=list, blank=True, help_text='As declared: ["group:managers", "user:alice"].'
    )
    assignee_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assigned_approvals"
    )
    assignee_groups = models.ManyToManyField(Group, blank=True, related_name="assigned_approvals")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField(null=True, blank=True)
    on_timeout = models.CharField(
        max_length=20, choices=OnTimeout.choices, default=OnTimeout.REJECT
    )
    quorum = models.PositiveIntegerField(
        default=1, help_text="Approvals needed; a single rejection rejects."
    )
    four_eyes = models.BooleanField(
        default=False, help_text="The user who started the run may not decide it."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    escalate_to = models.JSONField(
        default=list, blank=True, help_text="Assignees who take over when it times out."
    )
    escalation_timeout = models.DurationField(null=True, blank=True)
    escalated = models.BooleanField(default=False)
    fields = models.JSONField(
        default=list,
        blank=True,
        help_text="Form fields the approver fills in (see approvals.forms), validated specs.",
    )
    values = models.JSONField(
        default=dict, blank=True, help_text="The field values of the deciding vote."
    )
    remind_at = models.DateTimeField(
        null=True, blank=True, help_text="When the assignees are reminded (empty: never)."
    )
    reminded_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Whose delegate decided it (empty: the decider acted in their own name).",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ApprovalQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("decide_any_approval", "Can decide approvals assigned to others")]
        constraints = [
            # One live approval per run step. A retried run asks again; the ask its end
            # cancelled stays (who was asked, when, their votes) beside the new one.
            models.UniqueConstraint(
                fields=["run", "step_id"],
                condition=~models.Q(status="cancelled"),
                name="approval_unique_live_per_run_step",
            ),
        ]
        indexes = [
            # The inbox: pending approvals, newest first.
            models.Index(fields=["status", "-created_at"], name="approval_status_idx"),
            # The reminder sweep: pending approvals whose reminder is due and not sent yet.
            models.Index(
                fields=["remind_at"],
                name="approval_remind_due_idx",
                condition=models.Q(status="pending", reminded_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"


class ApprovalVote(models.Model):
    """One assignee's decision. An approval with a quorum collects several."""

    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(
        max_length=10, choices=[("approve", "Approve"), ("reject", "Reject")]
    )
    comment = models.TextField(blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="The form fields filled in.")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The assignee whose delegate cast this vote (empty: in their own name).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # One vote per person: a second click is a conflict, not a second vote.
            models.UniqueConstraint(fields=["approval", "user"], name="one_vote_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.decision}s {self.approval_id}"


class ApprovalEvent(models.Model):
    """The audit trail: every change of an approval, who made it and when."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        VOTED = "voted", "Voted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        ESCALATED = "escalated", "Escalated"
        REMINDED = "reminded", "Reminded"
        CANCELLED = "cancelled", "Cancelled"

    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="history")
    action = models.CharField(max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # An approval's history, in order (approval page, admin).
            models.Index(fields=["approval", "at"], name="approval_history_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor or 'the system'} at {self.at:%Y-%m-%d %H:%M:%S}"


class ApprovalLink(models.Model):
    """A link in an approval email: signed, bound to the person it was sent to, valid once and
    until ``expires_at``. Its id is the nonce inside the signed token (approvals.links)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"link to {self.approval_id} for {self.user_id}"


class DelegationQuerySet(models.QuerySet):
    def active(self, at=None) -> DelegationQuerySet:
        """Delegations whose period includes ``at`` (default: now, on the engine's clock)."""
        at = at or clock.now()
        return self.filter(starts_at__lte=at, ends_at__gt=at)


class Delegation(models.Model):
    """Out of office: from ``starts_at`` to ``ends_at``, the approvals ``user`` may decide also
    reach ``delegate`` (inbox, emails, the right to decide, on the user's behalf)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, help_text="e.g. Holiday until Monday")
    created_at = models.DateTimeField(default=timezone.now)

    objects = DelegationQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="delegation_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=~models.Q(user=models.F("delegate")),
                name="delegation_not_to_oneself",
            ),
        ]
        indexes = [
            # The inbox and permission check: whom does this delegate stand in for now.
            models.Index(fields=["delegate", "ends_at"], name="delegation_delegate_idx"),
            # A user's own delegations (their settings page, the overlap check).
            models.Index(fields=["user", "ends_at"], name="delegation_user_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.user} → {self.delegate} ({self.starts_at:%Y-%m-%d} to {self.ends_at:%Y-%m-%d})"
        )

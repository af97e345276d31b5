"""Signals of the approvals domain, sent after commit (see automation.lifecycle)."""

from __future__ import annotations

from automation.lifecycle import AfterCommitSignal

#: An approval was created or changed (a vote, a decision, an escalation, a reminder, a
#: cancellation): every entry of its audit trail. kwargs: approval_id, action.
approval_changed = AfterCommitSignal()

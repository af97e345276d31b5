"""Signals of the events domain, sent after commit (see automation.lifecycle)."""

from __future__ import annotations

from automation.lifecycle import AfterCommitSignal

#: A new event was stored (not sent for a duplicate delivery). kwargs: event_id, type, source.
event_recorded = AfterCommitSignal()

"""Approvals: the human decisions a workflow waits for."""

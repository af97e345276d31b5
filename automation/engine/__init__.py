"""The engine: durable runs, steps, waits and the run state machine (see ARCHITECTURE.md)."""

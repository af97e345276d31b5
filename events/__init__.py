"""Events: the append-only log of what happened and the ways events arrive."""

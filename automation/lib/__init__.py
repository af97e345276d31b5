"""The toolbox: helpers with no knowledge of workflows, events or approvals.

Everything else may import from here; nothing here imports the rest of the project.
"""

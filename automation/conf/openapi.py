"""The OpenAPI document drf-spectacular serves at /api/schema/ (and its Swagger and ReDoc pages)."""

from __future__ import annotations

__all__ = ["SPECTACULAR_SETTINGS"]

SPECTACULAR_SETTINGS = {
    "TITLE": "django-automation API",
    "DESCRIPTION": (
        "Events in, durable workflow runs out, approvals by people. Authenticate with "
        "`Authorization: Token <key>` (POST /api/auth/token/) or a browser session. Every "
        'refusal is `{"error": {"code", "message", "fields"?}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice fields of different models share names ("status"): name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "automation.models.RunStatus",
        "StepStatusEnum": "automation.models.StepStatus",
        "ApprovalStatusEnum": "approvals.models.Approval.Status",
        "WorkflowKindEnum": "automation.models.Workflow.Kind",
        "StepKindEnum": "automation.models.StepRecord.Kind",
        "RuleKindEnum": "rules.models.Rule.Kind",
    },
}

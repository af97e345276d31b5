from django.urls import path

from approvals.api import views

urlpatterns = [
    path("approvals/", views.approval_list, name="api-approvals"),
    path("approvals/delegations/", views.delegation_list, name="api-delegations"),
    path(
        "approvals/delegations/<int:delegation_id>/",
        views.delegation_end_view,
        name="api-delegation",
    ),
    path("approvals/<uuid:approval_id>/", views.approval_detail, name="api-approval"),
    path(
        "approvals/<uuid:approval_id>/decide/",
        views.approval_decide_view,
        name="api-approval-decide",
    ),
]

"""HTML routes of the approvals domain, included at ``/app/a/`` (links from approval emails)."""

from django.urls import path

from approvals import link_views

urlpatterns = [
    path("<str:token>/", link_views.link_open, name="approval-link"),
]

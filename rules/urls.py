from django.urls import path

from rules import api

urlpatterns = [
    path("rules/", api.rule_list, name="api-rules"),
    path("rules/<str:name>/", api.rule_detail, name="api-rule"),
]

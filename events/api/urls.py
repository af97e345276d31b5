from django.urls import path

from events.api import schemas, views

urlpatterns = [
    path("events/", views.events, name="api-events"),
    path("events/<uuid:event_id>/", views.event_detail, name="api-event"),
    path("events/<uuid:event_id>/replay/", views.event_replay, name="api-event-replay"),
    path("webhooks/", views.webhooks, name="api-webhooks"),
    path("webhooks/<slug:slug>/rotate/", views.webhook_rotate, name="api-webhook-rotate"),
    path("schemas/", schemas.schemas, name="api-schemas"),
    path("schemas/<str:event_type>/", schemas.schema_detail, name="api-schema-type"),
]

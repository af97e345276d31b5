from django.urls import re_path

from events import views

urlpatterns = [
    # The trailing slash is optional: senders are configured by hand, and a redirect loses a POST.
    re_path(r"^hooks/(?P<slug>[-\w]+)/?$", views.webhook, name="webhook"),
]

from django.apps import AppConfig

from automation.engine import ports


class RulesConfig(AppConfig):
    """Event rules: patterns across events (sequence, absence, threshold, aggregate, anomaly)
    that emit derived events. They see every event as it is routed, and their deadlines and
    window ends fire on the engine's sweep."""

    name = "rules"
    verbose_name = "Event rules"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from events import routing
        from rules import evaluate
        from rules.models import Rule

        routing.route_hook_add(evaluate.event_evaluate)
        ports.sweep_hook_add("rules", evaluate.rules_sweep)
        for signal in (post_save, post_delete):
            signal.connect(evaluate.cache_clear, sender=Rule, dispatch_uid=f"{signal}.rule")

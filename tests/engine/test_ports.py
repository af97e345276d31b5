"""The engine's ports: filled by the installed apps, loud when nobody filled one."""

import pytest

from automation.engine import dispatch, ports
from automation.tasks import CeleryBackend


def test_the_installed_apps_fill_every_port():
    assert isinstance(ports.dispatch_backend(), CeleryBackend)
    assert ports.event_sink() is not None
    assert ports.spec_builder() is not None
    assert ports.step_kind("approval") is not None


def test_an_unfilled_port_says_which_app_to_install():
    previous_sink = ports.event_sink_set(None)
    previous_builder = ports.spec_builder_set(None)
    previous_backend = dispatch.set_backend(ports._NoBackend())
    try:
        with pytest.raises(ports.PortNotFilled, match="add 'events' to INSTALLED_APPS"):
            ports.event_sink()
        with pytest.raises(ports.PortNotFilled, match="add 'automation' to INSTALLED_APPS"):
            ports.spec_builder()
        with pytest.raises(ports.PortNotFilled, match="add 'automation' to INSTALLED_APPS"):
            dispatch._send("advance", "some-run")  # not swallowed like a broker error
        with pytest.raises(ports.PortNotFilled, match=r"ctx\.sign_off\(\)"):
            ports.step_kind("sign_off")
    finally:
        ports.event_sink_set(previous_sink)
        ports.spec_builder_set(previous_builder)
        dispatch.set_backend(previous_backend)

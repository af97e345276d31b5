"""Routing messages leave a process from its publisher thread: at once when it is idle, many
events to a message when they pile up or arrive fast, all of them when the process exits, and
never twice from a forked child."""

from __future__ import annotations

import os
import threading
import time

import pytest

from events import publisher
from events.publisher import MAX_BATCH, Publisher


class Broker:
    """Records the messages a publisher sends; ``hold()`` makes the next send wait."""

    def __init__(self) -> None:
        self.messages: list[list[str]] = []
        self.sending = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def hold(self) -> None:
        self.release.clear()

    def __call__(self, event_ids: list[str]) -> None:
        self.sending.set()
        self.release.wait(10)
        self.messages.append(list(event_ids))


@pytest.fixture
def broker() -> Broker:
    return Broker()


def test_an_idle_process_sends_an_event_at_once_however_long_the_max_wait(broker, settings):
    settings.EVENTS_PUBLISH_MAX_WAIT = 600
    sender = Publisher(broker)
    sender.put("e1")
    assert sender.flush(timeout=5)
    assert broker.messages == [["e1"]]


def test_events_stored_while_a_message_is_sent_go_together_in_the_next(broker, settings):
    settings.EVENTS_PUBLISH_MAX_WAIT = 0
    sender = Publisher(broker)
    broker.hold()
    sender.put("e1")
    assert broker.sending.wait(5)
    for n in range(2, 6):
        sender.put(f"e{n}")
    broker.release.set()
    assert sender.flush(timeout=5)
    assert broker.messages == [["e1"], ["e2", "e3", "e4", "e5"]]


def test_a_message_carries_at_most_max_batch_events(broker, settings):
    settings.EVENTS_PUBLISH_MAX_WAIT = 0
    sender = Publisher(broker)
    broker.hold()
    sender.put("first")
    assert broker.sending.wait(5)
    piled = [f"e{n}" for n in range(MAX_BATCH + 7)]
    for event_id in piled:
        sender.put(event_id)
    broker.release.set()
    assert sender.flush(timeout=5)
    assert [len(message) for message in broker.messages] == [1, MAX_BATCH, 7]
    assert [event_id for message in broker.messages[1:] for event_id in message] == piled


def test_a_busy_process_holds_a_message_back_for_more_events_and_sends_it_on_exit(
    broker, settings, monkeypatch
):
    settings.EVENTS_PUBLISH_MAX_WAIT = 600
    monkeypatch.setattr(publisher, "FULL_WAIT_RATE", 1.0)  # the whole wait from 1 event/s
    sender = Publisher(broker)
    sender.put("e1")
    assert sender.flush(timeout=5)
    broker.sending.clear()
    sender.put("e2")  # one event in the last second: this message waits 10 minutes for company
    assert not broker.sending.wait(0.2)
    assert sender.flush(timeout=5)  # what an exiting process does
    assert broker.messages == [["e1"], ["e2"]]


def test_the_window_grows_with_the_square_of_the_rate(settings):
    """Nothing waits at the rates where latency counts; a busy process waits the whole
    EVENTS_PUBLISH_MAX_WAIT."""
    settings.EVENTS_PUBLISH_MAX_WAIT = 0.05
    sender = Publisher(lambda event_ids: None)
    windows = {}
    for rate in (0, 100, 250, 500, 2000):
        sender.recent.clear()
        sender.recent.append((time.monotonic(), rate))
        windows[rate] = sender._window()
    assert windows == pytest.approx({0: 0, 100: 0.002, 250: 0.0125, 500: 0.05, 2000: 0.05})


def test_a_broker_failure_leaves_the_queued_events_to_the_sweep_and_sending_goes_on(
    settings, caplog
):
    """The events queued behind a failed send are dropped too, not piled up while the broker
    is down (they are in the table, unrouted: the sweep routes them); later events are sent."""
    settings.EVENTS_PUBLISH_MAX_WAIT = 0
    sending, release, sent = threading.Event(), threading.Event(), []

    def broker_goes_away(event_ids: list[str]) -> None:
        if event_ids == ["e1"]:
            sending.set()
            release.wait(10)
            raise ConnectionError("broker went away")
        sent.append(event_ids)

    sender = Publisher(broker_goes_away)
    sender.put("e1")
    assert sending.wait(5)
    sender.put("e2")
    sender.put("e3")
    release.set()
    assert sender.flush(timeout=5)
    sender.put("e4")
    assert sender.flush(timeout=5)
    assert sent == [["e4"]]
    assert "routing of 1 events (2 more queued dropped)" in caplog.text


def test_a_forked_child_does_not_send_its_parents_queued_events(broker, settings, monkeypatch):
    settings.EVENTS_PUBLISH_MAX_WAIT = 0
    monkeypatch.setattr(publisher._publisher, "send", broker)
    broker.hold()
    publisher.route("e1")
    assert broker.sending.wait(5)
    publisher.route("e2")  # queued in the parent while e1 is being sent
    pid = os.fork()
    if pid == 0:  # the child: nothing queued, no thread
        child = publisher._publisher
        os._exit(0 if not child.pending and child.thread is None else 1)
    _, status = os.waitpid(pid, 0)
    broker.release.set()
    assert publisher._publisher.flush(timeout=5)
    assert os.WEXITSTATUS(status) == 0
    assert broker.messages == [["e1"], ["e2"]]

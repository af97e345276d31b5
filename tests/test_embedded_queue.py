"""The embedded mode's on-disk queue: a reader never sees half a message."""

from __future__ import annotations

import threading
import time

from kombu import Connection

from automation.lib import queue


def test_messages_written_while_a_reader_drains_arrive_whole_and_once(tmp_path):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path),
    }
    # kombu lists the folder on every get: draining n files costs n² under load, so a few
    # hundred (each large enough to be caught mid-write), not thousands.
    sent, received, errors = 600, [], []

    def write() -> None:
        with Connection(f"{queue.SCHEME}://", transport_options=options) as conn:
            q = conn.SimpleQueue("work")
            for n in range(sent):
                q.put({"n": n, "pad": "x" * 2000})  # large enough to be caught mid-write
            q.close()

    writer = threading.Thread(target=write)
    writer.start()
    with Connection(f"{queue.SCHEME}://", transport_options=options) as conn:
        q = conn.SimpleQueue("work")
        deadline = time.monotonic() + 120
        while len(received) < sent and time.monotonic() < deadline:
            try:
                message = q.get(timeout=0.05)
            except q.Empty:
                continue
            except ValueError as exc:  # kombu's own transport fails here
                errors.append(exc)
                continue
            received.append(message.payload["n"])
            message.ack()
        q.close()
    writer.join()
    assert errors == []
    assert sorted(received) == list(range(sent))
    assert not list(tmp_path.glob("*.part"))


def test_an_unreadable_file_is_skipped_not_fatal(tmp_path, caplog):
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path),
    }
    # Another queue name: kombu remembers declared exchanges per process, not per folder.
    # Named to sort before every message kombu writes ("<monotonic ms>_<uuid>...", read in
    # name order): "1_bad" came after a good message once the machine was up long enough.
    (tmp_path / "0_bad.spare.msg").write_bytes(b"")
    with Connection(f"{queue.SCHEME}://", transport_options=options) as conn:
        q = conn.SimpleQueue("spare")
        q.put({"n": 1})
        assert q.get(timeout=1).payload == {"n": 1}
        q.close()
    assert "not valid JSON" in caplog.text

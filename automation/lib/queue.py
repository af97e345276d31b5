"""The embedded mode's on-disk queue: kombu's filesystem transport, with whole messages only.

kombu's filesystem transport (5.7) creates a message's file, then locks and writes it, while a
reader moves and reads files without looking at the lock: a reader can take a file that is
still empty, fail to decode it, and the Celery worker stops for good ("Unrecoverable error:
JSONDecodeError"). Here a message is written under a name readers skip, then renamed into
place (atomic on POSIX), so a reader only ever sees a complete message. A file that still
cannot be decoded (written by something else) is logged and skipped instead of stopping the
worker.
"""

from __future__ import annotations

import logging
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger(__name__)

SCHEME = "automation-fs"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")  # skipped by readers
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: str) -> Any:
        while True:  # ends with a message, or with Empty when none is left
            try:
                return super()._get(queue)
            except ValueError:
                logger.error("embedded queue: skipped a message that is not valid JSON")


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES[SCHEME] = "automation.lib.queue:Transport"

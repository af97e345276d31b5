"""The Redis broker transport: kombu's, made to let a worker survive a Redis restart on its own.

kombu 5.7 and Celery 5.7 (the newest releases) can stop the whole worker when Redis goes away
(kombu#582, "Unrecoverable error: AttributeError('NoneType' object has no attribute
'hostname')"). On a lost connection the worker's consumer ``collect()``s the connection, which
detaches its transport (``transport.client = None``); channels of that connection live on
(the default channel, whose close failed while Redis was down, and the channel of messages
still being worked on). When one of them next needs Redis (the consumer closes the connection
again and the channel restores its unacknowledged messages; a task finishes and its message is
acknowledged), it asks the detached transport for Redis's address, gets an AttributeError that
no handler expects, and the worker exits. Seen about once per 30 to 90 Redis restarts under
load (bench/faults/restart_redis.py). A channel closed meanwhile (its ``connection`` is None)
fails the same way one step earlier.

Here such a channel raises redis's ConnectionError instead: an error every caller already
handles as "the broker connection is gone" (a close is skipped, an ack is logged as not sent).
Nothing is lost that was not lost already: the broker connection is gone, an unacknowledged
message is delivered again after the visibility timeout, and work whose message Redis lost is
found by the engine's sweeps.

Registered for ``redis://`` and ``rediss://`` URLs, as automation.lib.queue is for the embedded
queue; automation.celery imports both.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:  # closed, or detached
            raise RedisConnectionError(
                "this channel's broker connection was closed after a connection loss "
                "(kombu#582); the worker reconnects with a new one"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT_ALIASES["redis"] = TRANSPORT_ALIASES["rediss"] = "automation.lib.broker:Transport"

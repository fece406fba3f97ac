"""`HubConnection`: websockets' client connection, tuned for one busy Phoenix socket.

websockets' asyncio connection queues every incoming message for a ``recv()`` coroutine and
writes each outgoing frame with its own ``transport.write`` (one ``send`` system call each).
Under load both show in the consumer's CPU time. This subclass, passed to ``connect()`` as
its documented ``create_connection`` factory, changes two things:

- a complete text frame is handed straight to a callback (`HubConnection.delivering_to`),
  from ``data_received``, with no queue, future or coroutine per message. Fragmented and
  binary messages still take websockets' own path and reach ``recv()``, as do all control
  frames;
- whatever the protocol has to send is written with one ``transport.write``, so a batch of
  responses queued with ``protocol.send_text`` leaves in one system call.

Both rely on two methods of websockets' asyncio ``Connection`` (``process_event`` and
``send_data``) that are internal: requirements.txt pins websockets, and
``tests/core/hub_connection_test.py`` fails if an upgrade changes what they do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode, Frame, Opcode

logger = logging.getLogger(__name__)

MessageCallback = Callable[[str], None]
# How long to wait for the hub to close after we failed the connection, when the connection
# itself has no close timeout.
CLOSE_TIMEOUT = 10.0


class HubConnection(ClientConnection):
    """A client connection that delivers text messages to a callback as they arrive."""

    # Set on the class by `delivering_to`, so that no message can arrive before it is set.
    on_message: MessageCallback | None = None

    @classmethod
    def delivering_to(cls, on_message: MessageCallback) -> type[HubConnection]:
        """A subclass whose connections hand every complete text message to `on_message`.

        Pass it to ``connect(create_connection=...)``; messages that arrive together with
        the handshake response are delivered too, before ``connect()`` returns.
        """
        return type(cls.__name__, (cls,), {"on_message": staticmethod(on_message)})

    def process_event(self, event: Any) -> None:
        """Deliver a complete text frame to `on_message`; anything else goes to websockets."""
        callback = self.on_message
        if (
            callback is None
            or type(event) is not Frame
            or event.opcode is not Opcode.TEXT
            or not event.fin
        ):
            super().process_event(event)
            return
        try:
            text = str(event.data, "utf-8")
        except UnicodeDecodeError as error:
            # RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection (1007).
            self.protocol.fail(CloseCode.INVALID_DATA, f"{error.reason} at position {error.start}")
            self.send_data()
            # The hub should now close the TCP connection; do it ourselves if it does not.
            self.loop.call_later(self.close_timeout or CLOSE_TIMEOUT, self.transport.abort)
            return
        try:
            callback(text)
        except Exception:
            # The callback handles its own errors; this only keeps the socket alive if it
            # does not (an exception here would make asyncio close the transport).
            logger.exception("handling a message failed; the connection stays up")

    def send_data(self) -> None:
        """Write the protocol's pending output: one write for the data, then the EOF if any."""
        pending: list[bytes] = []
        for chunk in self.protocol.data_to_send():
            if chunk:
                pending.append(chunk)
                continue
            # An empty chunk marks the end of the stream: write what precedes it first.
            self._write(pending)
            pending = []
            self._end_stream()
        self._write(pending)

    def _write(self, chunks: list[bytes]) -> None:
        if len(chunks) == 1:
            self.transport.write(chunks[0])
        elif chunks:
            self.transport.write(b"".join(chunks))

    def _end_stream(self) -> None:
        transport = self.transport
        if not transport.can_write_eof():
            transport.close()  # TLS cannot half-close
            return
        try:
            transport.write_eof()
        except Exception:  # write_eof documents no exceptions: any one means it is closed
            transport.close()

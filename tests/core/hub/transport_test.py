"""`HubTransport` against a hub whose every byte the test writes (`tests.faults.ScriptedHub`)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import tempfile
import unittest
from pathlib import Path

from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.frames import Close, CloseCode, Opcode

from core.hub.transport import HubTransport
from tests.faults import Mode, ScriptedConnection, ScriptedHub, TcpFront


class Handler:
    """Records what the transport reports."""

    def __init__(self) -> None:
        self.opened = 0
        self.messages: list[str | bytes] = []
        self.resumed = asyncio.Event()
        self.closed = asyncio.Event()
        self.message_arrived = asyncio.Event()
        self.fail_on: str | None = None

    def connection_open(self, transport: HubTransport) -> None:
        self.opened += 1

    def frame_received(self, frame: str | bytes) -> None:
        self.messages.append(frame)
        self.message_arrived.set()
        if frame == self.fail_on:
            raise RuntimeError("the handler failed")

    def writing_resumed(self) -> None:
        self.resumed.set()

    def connection_closed(self, transport: HubTransport) -> None:
        self.closed.set()

    async def wait_messages(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self.message_arrived.clear()
                await self.message_arrived.wait()


async def assert_paused_reading_waits(
    test: unittest.TestCase, transport: HubTransport, hub: ScriptedConnection, handler: Handler
) -> None:
    """What the hub sends while `transport` pauses reading reaches `handler` only after
    `transport` resumes."""
    transport.pause_reading()
    hub.send_text("waiting")
    await hub.writer.drain()
    for _ in range(20):  # the loop polls its sockets in each of these iterations
        await asyncio.sleep(0)
    test.assertEqual(handler.messages, [])
    transport.resume_reading()
    await handler.wait_messages(1)
    test.assertEqual(handler.messages, ["waiting"])


class TransportTestCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.hub = await self.enterAsyncContext(ScriptedHub())
        self.handler = Handler()

    async def open(self, **options: float) -> tuple[HubTransport, ScriptedConnection]:
        opening = asyncio.ensure_future(
            HubTransport.open(self.hub.url(), self.handler, **options)  # type: ignore[arg-type]
        )
        connection = await self.hub.accept()
        await connection.handshake()
        transport = await opening
        self.addAsyncCleanup(self._close, transport)
        return transport, connection

    @staticmethod
    async def _close(transport: HubTransport) -> None:
        transport.abort("test over")
        await transport.wait_closed()


class MessagesTest(TransportTestCase):
    async def test_text_messages_reach_the_handler_in_order(self) -> None:
        _, hub = await self.open()
        self.assertEqual(self.handler.opened, 1)
        for text in ("one", "two", "three"):
            hub.send_text(text)
        await self.handler.wait_messages(3)
        self.assertEqual(self.handler.messages, ["one", "two", "three"])

    async def test_fragmented_messages_are_assembled(self) -> None:
        _, hub = await self.open()
        hub.send_frame(Opcode.TEXT, b"frag", fin=False)
        hub.send_frame(Opcode.PING, b"in between")  # control frames may interleave
        hub.send_frame(Opcode.CONT, "ment\u00e9".encode(), fin=False)
        hub.send_frame(Opcode.CONT, b"!", fin=True)
        hub.send_frame(Opcode.BINARY, b"\x00\x01", fin=False)
        hub.send_frame(Opcode.CONT, b"\x02", fin=True)
        await self.handler.wait_messages(2)
        self.assertEqual(self.handler.messages, ["fragment\u00e9!", b"\x00\x01\x02"])
        (pong,) = await hub.frames(1)
        self.assertEqual((pong.opcode, pong.data), (Opcode.PONG, b"in between"))

    async def test_invalid_utf8_fails_the_connection_with_1007(self) -> None:
        _, hub = await self.open()
        hub.send_frame(Opcode.TEXT, b"\xff\xfe")
        (close,) = await hub.frames(1)
        self.assertEqual(close.opcode, Opcode.CLOSE)
        self.assertEqual(Close.parse(close.data).code, CloseCode.INVALID_DATA)
        self.assertEqual(self.handler.messages, [])

    async def test_a_failing_handler_leaves_the_connection_up(self) -> None:
        _transport, hub = await self.open()
        self.handler.fail_on = "boom"
        with self.assertLogs("core.hub.transport", "ERROR"):
            hub.send_text("boom")
            await self.handler.wait_messages(1)
        hub.send_text("after")
        await self.handler.wait_messages(2)  # still open: the next frame arrives

    async def test_frames_sent_together_leave_in_one_write(self) -> None:
        transport, hub = await self.open()
        writes: list[int] = []
        assert transport._transport is not None  # counting the test's writes
        real_write = transport._transport.write

        def counting_write(data: bytes | bytearray | memoryview) -> None:
            writes.append(len(data))
            real_write(data)

        transport._transport.write = counting_write  # type: ignore[method-assign]
        transport.send_frames([b'"a"', b'"b"', b'"c"'])
        self.assertEqual(len(writes), 1)
        frames = await hub.frames(3)
        self.assertEqual([frame.data for frame in frames], [b'"a"', b'"b"', b'"c"'])


class CloseTest(TransportTestCase):
    async def test_the_closing_handshake_completes(self) -> None:
        transport, hub = await self.open()
        closing = asyncio.ensure_future(transport.close())
        (close,) = await hub.frames(1)
        self.assertEqual(Close.parse(close.data).code, CloseCode.NORMAL_CLOSURE)
        hub.writer.close()  # the hub ends the TCP connection, as the protocol says it should
        await asyncio.wait_for(closing, 5)
        self.assertTrue(self.handler.closed.is_set())
        self.assertIsNone(transport.abort_reason)

    async def test_a_hub_that_never_closes_is_dropped_after_the_close_timeout(self) -> None:
        transport, _ = await self.open(close_timeout=0.2)
        await asyncio.wait_for(transport.close(), 5)
        self.assertEqual(transport.abort_reason, "the hub did not close the connection")

    async def test_a_close_from_the_hub_is_answered_and_reported(self) -> None:
        transport, hub = await self.open()
        hub.protocol.send_close(CloseCode.SERVICE_RESTART, "restarting")
        hub.flush()
        (answer,) = await hub.frames(1)
        self.assertEqual(Close.parse(answer.data).code, CloseCode.SERVICE_RESTART)
        hub.writer.close()
        await asyncio.wait_for(self.handler.closed.wait(), 5)
        self.assertEqual((transport.close_code, transport.close_reason), (1012, "restarting"))


class OpeningTest(unittest.IsolatedAsyncioTestCase):
    async def test_each_failed_opening_raises_what_the_client_retries(self) -> None:
        cases = {
            Mode.CLOSE: (InvalidMessage, ConnectionError),
            Mode.GARBAGE: (InvalidMessage,),
            Mode.HTTP_502: (InvalidStatus,),
            Mode.HANG: (TimeoutError,),
        }
        for mode, errors in cases.items():
            with self.subTest(mode=mode.value):
                async with TcpFront(("127.0.0.1", 9), mode) as front:
                    with self.assertRaises(errors):
                        await HubTransport.open(front.websocket_url, Handler(), open_timeout=0.3)

    async def test_a_refused_port_is_an_os_error(self) -> None:
        async with TcpFront(("127.0.0.1", 9)) as front:
            port = front.port
        with self.assertRaises(OSError):
            await HubTransport.open(f"ws://127.0.0.1:{port}/websocket", Handler())

    async def test_an_http_answer_other_than_101_names_its_status(self) -> None:
        async with ScriptedHub() as hub:
            opening = asyncio.ensure_future(HubTransport.open(hub.url(), Handler()))
            connection = await hub.accept()
            await connection.handshake(status=403)
            with self.assertRaises(InvalidStatus) as caught:
                await opening
        self.assertEqual(caught.exception.response.status_code, 403)


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command to make a certificate")
class TlsTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        folder = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(key), "-out", str(self.cert), "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(self.cert, key)
        self.hub = await self.enterAsyncContext(ScriptedHub(ssl=server))

    async def test_wss_refuses_a_certificate_it_cannot_verify(self) -> None:
        with self.assertRaises(ssl.SSLCertVerificationError):
            await HubTransport.open(self.hub.url("localhost", "wss"), Handler())

    async def open_trusted(self, handler: Handler) -> tuple[HubTransport, ScriptedConnection]:
        """Connect over ``wss://``, trusting the test's certificate."""
        trusted = ssl.create_default_context(cafile=str(self.cert))
        opening = asyncio.ensure_future(
            HubTransport.open(self.hub.url("localhost", "wss"), handler, ssl_context=trusted)
        )
        connection = await self.hub.accept()
        await connection.handshake()
        return await opening, connection

    async def test_wss_connects_when_the_certificate_is_trusted(self) -> None:
        handler = Handler()
        transport, connection = await self.open_trusted(handler)
        connection.send_text("over TLS")
        await handler.wait_messages(1)
        self.assertEqual(handler.messages, ["over TLS"])
        transport.abort("test over")
        await transport.wait_closed()

    async def test_reading_pauses_and_resumes_over_tls(self) -> None:
        handler = Handler()
        transport, connection = await self.open_trusted(handler)
        self.addAsyncCleanup(TransportTestCase._close, transport)
        await assert_paused_reading_waits(self, transport, connection, handler)

    async def test_the_name_must_match_the_certificate(self) -> None:
        trusted = ssl.create_default_context(cafile=str(self.cert))
        with self.assertRaises(ssl.SSLCertVerificationError):
            # 127.0.0.1 is not a name the certificate covers.
            await HubTransport.open(
                self.hub.url("127.0.0.1", "wss"), Handler(), ssl_context=trusted
            )


class BackpressureTest(TransportTestCase):
    async def test_writes_pause_while_the_hub_does_not_read_and_resume_after(self) -> None:
        transport, hub = await self.open()
        hub.writer.transport.pause_reading()  # the hub stops reading
        frame = b'"' + b"x" * 65536 + b'"'
        sent = 0
        async with asyncio.timeout(10):
            while transport.writable:
                transport.send_frames([frame])
                sent += 1
                await asyncio.sleep(0)  # let the kernel's buffers fill
        buffered = transport._transport.get_write_buffer_size()  # type: ignore[union-attr]
        self.assertLessEqual(buffered, 2 * 1024 * 1024, "bounded near the high mark")
        hub.writer.transport.resume_reading()
        frames = await hub.frames(sent, timeout=10)
        self.assertEqual(len(frames), sent)
        await asyncio.wait_for(self.handler.resumed.wait(), 5)
        self.assertTrue(transport.writable)


class ReadPacingTest(TransportTestCase):
    async def test_what_the_hub_sends_while_reading_is_paused_arrives_after_resuming(
        self,
    ) -> None:
        transport, hub = await self.open()
        await assert_paused_reading_waits(self, transport, hub, self.handler)
        transport.resume_reading()  # not paused: nothing happens
        hub.send_text("next")
        await self.handler.wait_messages(2)

    async def test_pausing_a_closed_connection_does_nothing(self) -> None:
        transport, _ = await self.open()
        transport.abort("test")
        await transport.wait_closed()
        transport.pause_reading()
        transport.resume_reading()


if __name__ == "__main__":
    unittest.main()

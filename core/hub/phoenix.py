"""Phoenix Channels framing: messages, the v1 and v2 serializers, and refs.

This module never touches a socket. It turns text frames into `Message` objects and back, so
the framing can be tested on its own and shared by the client and the local hub.

v1 (the default, no `vsn` parameter): one JSON object per frame,
``{"topic", "event", "payload", "ref"}`` (``join_ref`` optional).
v2 (``vsn=2.0.0``): one JSON array per frame, ``[join_ref, ref, topic, event, payload]``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from core import json_codec

# Topics and events the Phoenix transport itself defines.
PHOENIX_TOPIC = "phoenix"
HEARTBEAT = "heartbeat"
PHX_JOIN = "phx_join"
PHX_LEAVE = "phx_leave"
PHX_REPLY = "phx_reply"
PHX_ERROR = "phx_error"
PHX_CLOSE = "phx_close"

Version = Literal["1.0.0", "2.0.0"]


class FrameError(ValueError):
    """A frame that is not a valid Phoenix message for the serializer in use."""


@dataclass(slots=True)
class Message:
    """One Phoenix message, whatever the serializer."""

    topic: str
    event: str
    payload: Any = field(default_factory=dict)
    ref: str | None = None
    join_ref: str | None = None


class Serializer(Protocol):
    """Turns messages into text frames and back."""

    version: Version

    def encode(self, message: Message) -> str:
        """Encode a message as one text frame."""
        ...

    def encode_bytes(self, message: Message) -> bytes:
        """`encode`, as the UTF-8 bytes of the frame."""
        ...

    def encode_parts(
        self, topic: str, event: str, payload: Any, ref: str | None, join_ref: str | None
    ) -> bytes:
        """`encode_bytes` of the message with these parts, without making the `Message`."""
        ...

    def decode(self, frame: str | bytes) -> Message:
        """Decode one frame, raising `FrameError` when it is not a valid message."""
        ...

    def salvage(self, frame: str | bytes) -> Message | None:
        """A frame `decode` refused, read as far as `json_codec.salvage` can: the message
        with its payload as a `json_codec.Salvaged`, or None."""
        ...


def _optional_ref(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FrameError(f"{name} must be a string or null")


def _check_names(topic: Any, event: Any) -> tuple[str, str]:
    if not isinstance(topic, str):
        raise FrameError("topic must be a string")
    if not isinstance(event, str):
        raise FrameError("event must be a string")
    return topic, event


def _salvage_json(frame: str | bytes) -> tuple[Any, str] | None:
    """A refused frame's JSON value and what was left out of it, or None (`json_codec.salvage`)."""
    if isinstance(frame, bytes):
        return None
    salvaged = json_codec.salvage(frame)
    return None if salvaged is None else (salvaged.value, salvaged.problem)


def _salvaged_message(
    topic: Any, event: Any, payload: Any, ref: Any, join_ref: Any, problem: str
) -> Message | None:
    """The message of a salvaged frame, its payload wrapped; None when its envelope is not a
    message's either."""
    try:
        topic, event = _check_names(topic, event)
        return Message(
            topic,
            event,
            json_codec.Salvaged(payload, problem),
            _optional_ref(ref, "ref"),
            _optional_ref(join_ref, "join_ref"),
        )
    except FrameError:
        return None


def _decode_json(frame: str | bytes) -> Any:
    if isinstance(frame, bytes):
        raise FrameError("binary frames are not part of the JSON serializers")
    try:
        return json_codec.loads(frame)
    except json_codec.JSONDecodeFailure as error:
        raise FrameError(f"not JSON: {error}") from None


class V1Serializer:
    """Phoenix's v1 JSON serializer: one object per frame."""

    version: Version = "1.0.0"

    def encode(self, message: Message) -> str:
        """Encode as ``{"topic", "event", "payload", "ref"}`` (plus ``join_ref`` when set)."""
        return self.encode_bytes(message).decode()

    def encode_bytes(self, message: Message) -> bytes:
        """`encode`, as the UTF-8 bytes of the frame."""
        return self.encode_parts(
            message.topic, message.event, message.payload, message.ref, message.join_ref
        )

    def encode_parts(
        self, topic: str, event: str, payload: Any, ref: str | None, join_ref: str | None
    ) -> bytes:
        """`encode_bytes` of the message with these parts, without making the `Message`."""
        data: dict[str, Any] = {"topic": topic, "event": event, "payload": payload, "ref": ref}
        if join_ref is not None:
            data["join_ref"] = join_ref
        return json_codec.dumps_bytes(data)

    def decode(self, frame: str | bytes) -> Message:
        """Decode an object frame; anything else raises `FrameError`."""
        data = _decode_json(frame)
        if type(data) is not dict:
            raise FrameError("a v1 frame must be a JSON object")
        topic, event = data.get("topic"), data.get("event")
        if type(topic) is not str or type(event) is not str:
            topic, event = _check_names(topic, event)
        ref, join_ref = data.get("ref"), data.get("join_ref")
        if ref is not None and type(ref) is not str:
            ref = _optional_ref(ref, "ref")
        if join_ref is not None and type(join_ref) is not str:
            join_ref = _optional_ref(join_ref, "join_ref")
        return Message(topic, event, data.get("payload"), ref, join_ref)

    def salvage(self, frame: str | bytes) -> Message | None:
        """See `Serializer.salvage`."""
        salvaged = _salvage_json(frame)
        if salvaged is None or type(salvaged[0]) is not dict:
            return None
        data, problem = salvaged
        return _salvaged_message(
            data.get("topic"),
            data.get("event"),
            data.get("payload"),
            data.get("ref"),
            data.get("join_ref"),
            problem,
        )


class V2Serializer:
    """Phoenix's v2 JSON serializer: ``[join_ref, ref, topic, event, payload]``."""

    version: Version = "2.0.0"

    def encode(self, message: Message) -> str:
        """Encode as a five-element array."""
        return self.encode_bytes(message).decode()

    def encode_bytes(self, message: Message) -> bytes:
        """`encode`, as the UTF-8 bytes of the frame."""
        return json_codec.dumps_bytes(
            [message.join_ref, message.ref, message.topic, message.event, message.payload]
        )

    def encode_parts(
        self, topic: str, event: str, payload: Any, ref: str | None, join_ref: str | None
    ) -> bytes:
        """`encode_bytes` of the message with these parts, without making the `Message`."""
        return json_codec.dumps_bytes([join_ref, ref, topic, event, payload])

    def decode(self, frame: str | bytes) -> Message:
        """Decode a five-element array frame; anything else raises `FrameError`."""
        data = _decode_json(frame)
        if not isinstance(data, list) or len(data) != 5:
            raise FrameError("a v2 frame must be a JSON array of five elements")
        join_ref, ref, topic, event, payload = data
        topic, event = _check_names(topic, event)
        return Message(
            topic=topic,
            event=event,
            payload=payload,
            ref=_optional_ref(ref, "ref"),
            join_ref=_optional_ref(join_ref, "join_ref"),
        )

    def salvage(self, frame: str | bytes) -> Message | None:
        """See `Serializer.salvage`."""
        salvaged = _salvage_json(frame)
        if salvaged is None or not isinstance(salvaged[0], list) or len(salvaged[0]) != 5:
            return None
        (join_ref, ref, topic, event, payload), problem = salvaged
        return _salvaged_message(topic, event, payload, ref, join_ref, problem)


def serializer_for(version: str) -> Serializer:
    """Return the serializer for a `vsn` value ("1.0.0" or "2.0.0")."""
    if version.startswith("1."):
        return V1Serializer()
    if version.startswith("2."):
        return V2Serializer()
    raise ValueError(f"unsupported Phoenix serializer version {version!r} (use 1.0.0 or 2.0.0)")


class RefCounter:
    """Hands out message refs: increasing integers as strings, like phoenix.js."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> str:
        """Return a fresh ref."""
        return str(next(self._counter))

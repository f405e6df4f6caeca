"""The host <-> runner wire protocol; see `sandbox.runner.channel` for the full description.

The implementation lives inside the runner package so that the runner directory can be
copied on its own (into a container image, say); this module re-exports it for the host.
"""

from sandbox.runner.channel import (
    EXEC,
    HTTP_REQUEST,
    HTTP_RESPONSE,
    KEY_BYTES,
    MAX_FRAME_BYTES,
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    READY,
    RESULT,
    ChannelClosed,
    ChannelError,
    Message,
    decode_body,
    encode_frame,
    read_frame,
    read_message,
    read_sealed_message,
    ready_pid,
    write_frame,
    write_message,
)

__all__ = [
    "EXEC",
    "HTTP_REQUEST",
    "HTTP_RESPONSE",
    "KEY_BYTES",
    "MAX_FRAME_BYTES",
    "MESSAGE_TYPES",
    "PROTOCOL_VERSION",
    "READY",
    "RESULT",
    "ChannelClosed",
    "ChannelError",
    "Message",
    "decode_body",
    "encode_frame",
    "read_frame",
    "read_message",
    "read_sealed_message",
    "ready_pid",
    "write_frame",
    "write_message",
]

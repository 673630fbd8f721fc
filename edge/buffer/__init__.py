"""The edge's durable store-and-forward buffer (see docs/store-and-forward.md)."""

from edge.buffer.segments import BufferDirError, FsyncPolicy
from edge.buffer.store import BufferConfig, BufferStats, SampleBuffer, Taken

__all__ = [
    "BufferConfig",
    "BufferDirError",
    "BufferStats",
    "FsyncPolicy",
    "SampleBuffer",
    "Taken",
]

"""Where the supervisor keeps a run's finished seconds: on disk, not in memory.

A finished second of a run at 20,000 requests/s is ~7-12 KB of encoded
histograms (the point's `hdr` and `hdr_uncorrected`, four quarter-second
samples, each step's), and the result keeps them one a second for the last
hour (surge.run.retention).  Held in memory that would be ~40 MB an hour and
an RSS that grows all through the first hour; so each finished second is one
blob (marshal'd, the supervisor reads only what it wrote) appended to an
unlinked temporary file and read back when the result is made.  Only its
offset and length stay in memory (surge.run.retention.Series: 16 bytes a
second).

Blobs belong to a generation (a range of seconds), each in a file of its own,
so the seconds a long run has folded into blocks free their disk space when
their generation is dropped.  When no temporary file can be made or written
(a read-only or full disk), blobs are kept in memory instead: the run goes
on, only its supervisor is larger.
"""
from __future__ import annotations

import marshal
import os
import tempfile


class Spill:
    """Append-only blobs by generation; `put` gives the offset, `get` reads it back."""

    def __init__(self):
        self.files: dict[int, object] = {}       # generation -> unlinked temporary file
        self.ends: dict[int, int] = {}           # generation -> bytes written
        self.memory: dict[int, list[bytes]] = {}     # generation -> blobs, once the disk failed
        self.failed: str | None = None           # why blobs went to memory

    def put(self, generation: int, value) -> tuple[int, int]:
        """Store `value` (marshal-able); (offset, length) to read it back."""
        blob = marshal.dumps(value)
        if self.failed is None and generation not in self.memory:
            try:
                f = self.files.get(generation)
                if f is None:
                    f = self.files[generation] = tempfile.TemporaryFile(prefix="surge-seconds-")
                    self.ends[generation] = 0
                offset = self.ends[generation]
                os.pwrite(f.fileno(), blob, offset)
                self.ends[generation] = offset + len(blob)
                return offset, len(blob)
            except OSError as exc:
                self.failed = exc.strerror or str(exc)
        kept = self.memory.setdefault(generation, [])
        kept.append(blob)
        return -len(kept), len(blob)            # negative: an index into memory

    def get(self, generation: int, offset: int, length: int):
        if offset < 0:
            return marshal.loads(self.memory[generation][-offset - 1])
        blob = os.pread(self.files[generation].fileno(), length, offset)
        if len(blob) != length:
            raise OSError(f"a spilled second was cut short ({len(blob)} of {length} bytes)")
        return marshal.loads(blob)

    def drop(self, generation: int) -> None:
        """Every blob of this generation is no longer needed: free its disk."""
        f = self.files.pop(generation, None)
        if f is not None:
            f.close()
        self.ends.pop(generation, None)
        self.memory.pop(generation, None)

    def generations(self) -> list[int]:
        return sorted(set(self.files) | set(self.memory))

    def close(self) -> None:
        for generation in self.generations():
            self.drop(generation)

"""Object bytes on local disk, named by uuid (never by object key).

Layout under ``root``: ``tmp/<uuid>`` while being written, ``blobs/<2 hex>/<uuid>`` once
complete. A blob is made durable before the metadata that points at it is committed:
write to tmp -> fsync file -> rename into blobs/ -> fsync directory. Blobs no row refers to
(a crash between rename and commit, or between commit and unlinking a replaced object's
blobs) are removed by :meth:`BlobStore.collect_garbage` at start-up, before serving.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


class BlobWriter:
    """One blob being written. ``commit`` makes it durable and visible under its name."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.name = uuid.uuid4().hex
        self.tmp = store.tmp_dir / self.name
        self._fh: BinaryIO | None = open(self.tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        self.written = 0

    def write(self, data: bytes) -> None:
        assert self._fh is not None
        self._fh.write(data)
        self.written += len(data)

    async def commit(self) -> str:
        fh = self._fh
        assert fh is not None
        loop = asyncio.get_running_loop()
        final = self.store.path(self.name)

        def _sync() -> None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            final.parent.mkdir(exist_ok=True)
            os.replace(self.tmp, final)
            _fsync_dir(final.parent)

        self._fh = None
        await loop.run_in_executor(None, _sync)
        return self.name

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.blob_dir = root / "blobs"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.blob_dir.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if len(name) != 32 or not all(c in "0123456789abcdef" for c in name):
            raise ValueError("bad blob name")
        return self.blob_dir / name[:2] / name

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def open(self, name: str) -> BinaryIO:
        return open(self.path(name), "rb")  # noqa: SIM115 - caller closes

    def delete(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass

    def collect_garbage(self, referenced: set[str]) -> int:
        """Remove tmp files and blobs not in ``referenced``. Call before serving."""
        removed = 0
        for entry in self.tmp_dir.iterdir():
            entry.unlink(missing_ok=True)
            removed += 1
        for sub in self.blob_dir.iterdir():
            if not sub.is_dir():
                continue
            for entry in sub.iterdir():
                if entry.name not in referenced:
                    entry.unlink(missing_ok=True)
                    removed += 1
        return removed

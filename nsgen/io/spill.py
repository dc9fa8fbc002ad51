"""Scratch volumes between passes: row-major files read and written by rows (or bands).

Workers write disjoint row ranges of the same file concurrently; the reader
reads row ranges straight into shared-memory slots. A volume may keep its first rows in
a file of a memory file system (``/dev/shm``, :meth:`Spill.create`'s ``memory_rows``) and
the rest on disk: writing a disk file costs about 5x the CPU time of writing memory (the
file system's write path and the page cache's write-back), so scratch that fits the
memory budget is kept there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


#: buffers per ``preadv`` call (Linux's IOV_MAX)
_IOV_MAX = 1024


#: at most this share of the memory limit keeps scratch volumes in memory (the passes are
#: sized within the rest; rows beyond it go to disk: :func:`memory_rows`)
MEMORY_SCRATCH_SHARE = 0.5
#: where the rows of scratch volumes kept in memory live (a memory file system)
SHM_DIR = Path("/dev/shm")


def memory_rows(limit: int, row_bytes: int, n_rows: int, shm_dir: Path = SHM_DIR) -> int:
    """Rows of scratch volumes (``row_bytes`` each, all volumes together) kept in
    ``shm_dir``: at most :data:`MEMORY_SCRATCH_SHARE` of the memory ``limit``, and no more
    than leaves the rest of the limit free there (the passes' shared-memory slots live there
    too); 0 without such a file system.

    Examples
    --------
    >>> memory_rows(4 * 10**9, 5 * 10**6, 256, Path("/no/such/dir"))
    0
    """
    try:
        st = os.statvfs(shm_dir)
    except OSError:
        return 0
    free = st.f_bavail * st.f_frsize
    room = min(MEMORY_SCRATCH_SHARE * limit, free - (1 - MEMORY_SCRATCH_SHARE) * limit)
    return max(0, min(n_rows, int(room // max(1, row_bytes))))

def pwrite_all(fd: int, data: memoryview | bytes, offset: int) -> None:
    """Write all of ``data`` at byte ``offset`` of the open file ``fd`` (``os.pwrite`` may
    write less than asked: the rest is written after it)."""
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


@dataclass(frozen=True)
class Spill:
    """A scratch volume of ``shape`` (rows first) and ``dtype`` stored at ``path``, from
    byte ``offset`` on (0 for nsgen's own scratch files; the contiguous data set of an
    HDF5 file written in place, as :func:`nsgen.scan.create_frame_copy` allows)."""

    path: Path
    shape: tuple[int, ...]
    dtype: str = "float32"
    offset: int = 0
    #: rows ``0 .. memory_rows - 1`` are stored in ``memory`` (a file in a memory file
    #: system), the others in ``path`` from its row 0 on
    memory: Path | None = None
    memory_rows: int = 0

    @property
    def row_bytes(self) -> int:
        """Bytes of one row (all axes but the first)."""
        return int(np.prod(self.shape[1:])) * np.dtype(self.dtype).itemsize

    @property
    def memory_bytes(self) -> int:
        """Bytes of the rows kept in ``memory``."""
        return self.memory_rows * self.row_bytes

    @classmethod
    def create(cls, path: Path, shape: tuple[int, ...], dtype: str = "float32",
               memory: Path | None = None, memory_rows: int = 0) -> "Spill":
        """Create (or truncate) the file at its full size (sparse on most filesystems); with
        ``memory``, the first ``memory_rows`` rows (clipped to the volume) in that file
        instead (the disk file holds the others).

        Examples
        --------
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> s = Spill.create(d / "v.f32", (5, 2), memory=d / "m.f32", memory_rows=3)
        >>> s.write_rows(1, np.arange(8, dtype=np.float32).reshape(4, 2))
        >>> s.read_rows(2, 5).tolist(), (d / "m.f32").stat().st_size, s.path.stat().st_size
        ([[2.0, 3.0], [4.0, 5.0], [6.0, 7.0]], 24, 16)
        >>> s.unlink()
        """
        shape = tuple(int(s) for s in shape)
        rows = min(max(0, int(memory_rows)), shape[0]) if memory is not None else 0
        spill = cls(Path(path), shape, np.dtype(dtype).str,
                    memory=Path(memory) if memory is not None and rows else None,
                    memory_rows=rows)
        spill.path.parent.mkdir(parents=True, exist_ok=True)
        with open(spill.path, "wb") as f:
            f.truncate((spill.shape[0] - rows) * spill.row_bytes)
        if spill.memory is not None:
            with open(spill.memory, "wb") as f:
                f.truncate(spill.memory_bytes)
        return spill

    def unlink(self) -> None:
        """Remove the volume's files (those that exist)."""
        self.path.unlink(missing_ok=True)
        if self.memory is not None:
            self.memory.unlink(missing_ok=True)

    def _pieces(self, start: int, stop: int) -> list[tuple[Path, int, int, int]]:
        """Rows ``start .. stop-1`` as ``(file, byte offset, first, last)`` pieces, ``first``
        and ``last`` counted from ``start``."""
        out = []
        cut = start
        if self.memory is not None and start < self.memory_rows:
            cut = min(stop, self.memory_rows)
            out.append((self.memory, start * self.row_bytes, 0, cut - start))
        if cut < stop:
            out.append((self.path, self.offset + (cut - self.memory_rows) * self.row_bytes,
                        cut - start, stop - start))
        return out

    def write_rows(self, start: int, block: np.ndarray) -> None:
        """Write ``block`` (shape ``(k, *shape[1:])``) as rows ``start .. start+k-1`` (rows of
        no bytes, as in a volume with an empty axis, are written and read as nothing)."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.shape[1:] != self.shape[1:] or start < 0 or start + len(block) > self.shape[0]:
            raise ValueError(f"rows {start}+{block.shape} do not fit spill {self.shape}")
        if not block.size:   # rows of no bytes (a volume with an empty axis): nothing to do
            return
        data = block.data.cast("B")
        for path, off, first, last in self._pieces(start, start + len(block)):
            fd = os.open(path, os.O_WRONLY)
            try:
                pwrite_all(fd, data[first * self.row_bytes:last * self.row_bytes], off)
            finally:
                os.close(fd)

    def write_band(self, start: int, block: np.ndarray, planes_first: bool = False,
                   planes: np.ndarray | None = None) -> None:
        """Write ``block[j]`` (shape ``(b, shape[0], *shape[2:])``) at index ``start + j`` of
        the second axis, for every first-axis index: a band of a volume stored angles first,
        from rows-first data, without a transposed copy (a volume all on disk). With
        ``planes_first``, ``block`` is ``(shape[0], b, *shape[2:])`` (the volume's own
        order: one contiguous piece per plane); and with ``planes`` (``shape[0]`` ints),
        ``block`` is ``(p, b, *shape[2:])`` and its plane ``planes[k]`` is written as the
        volume's plane ``k`` (a band whose planes repeat, never expanded).

        Examples
        --------
        A rows-first block of 2 rows goes into rows 1-2 of an angles-first volume:
        ``spill.write_band(1, block)`` stores ``block[j, k]`` at ``volume[k, 1 + j]``;
        ``spill.write_band(1, block.transpose(1, 0, 2), planes_first=True)`` does the same.

        >>> import tempfile
        >>> s = Spill.create(Path(tempfile.mkdtemp()) / "v.u1", (3, 2, 2), "uint8")
        >>> band = np.array([[[1, 2]], [[3, 4]]], np.uint8)   # 2 planes of row 1
        >>> s.write_band(1, band, planes_first=True, planes=np.array([0, 0, 1]))
        >>> s.read_rows(0, 3)[:, 1].tolist()
        [[1, 2], [1, 2], [3, 4]]
        """
        if planes is not None:
            if not planes_first or len(planes) != self.shape[0] or block.ndim < 2 or \
                    not 0 <= int(np.min(planes)) <= int(np.max(planes)) < block.shape[0]:
                raise ValueError(f"planes {len(planes)} of band {block.shape} do not fit "
                                 f"spill {self.shape}")
            index = np.asarray(planes)
        else:
            index = np.arange(block.shape[0] if planes_first else 0)
        if planes_first and block.ndim >= 2:
            block = block.swapaxes(0, 1)
        if block.ndim < 2 or (block.shape[1] != self.shape[0] and planes is None) or \
                block.shape[2:] != self.shape[2:] or start < 0 or \
                start + block.shape[0] > self.shape[1]:
            raise ValueError(f"band {start}+{block.shape} does not fit spill {self.shape}")
        if self.memory is not None:
            raise ValueError("bands of a volume kept partly in memory are not supported")
        line = int(np.prod(self.shape[2:], dtype=np.int64)) * np.dtype(self.dtype).itemsize
        if planes_first:   # (b, planes, ...) view of a contiguous (planes, b, ...) block
            contiguous = np.ascontiguousarray(block.swapaxes(0, 1), dtype=self.dtype)
            whole = contiguous.reshape(contiguous.shape[0], -1).view(np.uint8)

            def bufs(k: int) -> list:
                return [whole[index[k]].data]
        else:
            block = np.ascontiguousarray(block, dtype=self.dtype)
            views = [row.data.cast("B") for row in block.reshape(block.shape[0],
                                                                 block.shape[1], -1)]

            def bufs(k: int) -> list:
                return [v[k * line:(k + 1) * line] for v in views]
        total = line * block.shape[0]
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for k in range(self.shape[0]):
                pieces = bufs(k)
                off = self.offset + k * self.row_bytes + start * line
                n = os.pwritev(fd, pieces, off)
                if n != total:  # short write: finish it
                    pwrite_all(fd, b"".join(bytes(b) for b in pieces)[n:], off + n)
        finally:
            os.close(fd)

    def read_fields(self, start: int, stop: int, outs: list[np.ndarray]) -> None:
        """Read rows ``start .. stop-1`` split along the second axis into ``outs``: each a
        C-contiguous array ``(stop - start, n, *shape[2:])``, the ``n`` adding up to
        ``shape[1]`` (each row's fields scattered into them in order by the reads
        themselves: no copy).

        Examples
        --------
        >>> import tempfile
        >>> s = Spill.create(Path(tempfile.mkdtemp()) / "v.f32", (3, 3, 2))
        >>> s.write_rows(0, np.arange(18, dtype=np.float32).reshape(3, 3, 2))
        >>> a, b = np.empty((2, 1, 2), np.float32), np.empty((2, 2, 2), np.float32)
        >>> s.read_fields(1, 3, [a, b])
        >>> a[:, 0].tolist(), b[1].tolist()
        ([[6.0, 7.0], [12.0, 13.0]], [[14.0, 15.0], [16.0, 17.0]])
        """
        rows = stop - start
        if sum(o.shape[1] for o in outs) != self.shape[1] or any(
                o.shape[:1] + o.shape[2:] != (rows, *self.shape[2:]) or
                o.dtype != np.dtype(self.dtype) or not o.flags.c_contiguous for o in outs):
            raise ValueError(f"outs must be C-contiguous {self.dtype} arrays of "
                             f"({rows}, n, {self.shape[2:]}) whose n add up to {self.shape[1]}")
        if not rows or not self.row_bytes:
            return
        views = [o.reshape(rows, -1).view(np.uint8) for o in outs]
        for path, off, first, last in self._pieces(start, stop):
            bufs = [v[r].data for r in range(first, last) for v in views]
            fd = os.open(path, os.O_RDONLY)
            try:
                while bufs:
                    batch = bufs[:_IOV_MAX]
                    n = os.preadv(fd, batch, off)
                    want = sum(b.nbytes for b in batch)
                    if n == want:
                        bufs, off = bufs[len(batch):], off + n
                        continue
                    if n == 0:
                        raise EOFError(f"{path} is shorter than its shape {self.shape}")
                    off += n   # a short read: go on from the byte it stopped at
                    while n >= bufs[0].nbytes:
                        n -= bufs[0].nbytes
                        bufs = bufs[1:]
                    bufs[0] = bufs[0][n:]
            finally:
                os.close(fd)

    def map_rows(self, start: int, stop: int) -> np.ndarray | None:
        """Rows ``start .. stop-1`` mapped from their file (copy on write: the file is never
        changed), or None where they lie in two files. No copy and no new memory: a
        memory file system's pages are mapped as they are (reading them into a new
        buffer faulted its every page in first, the most of a read's time).

        Examples
        --------
        >>> import tempfile
        >>> s = Spill.create(Path(tempfile.mkdtemp()) / "v.f32", (3, 2))
        >>> s.write_rows(0, np.arange(6, dtype=np.float32).reshape(3, 2))
        >>> s.map_rows(1, 3).tolist()
        [[2.0, 3.0], [4.0, 5.0]]
        >>> s.unlink()
        """
        pieces = self._pieces(start, stop)
        if len(pieces) != 1 or stop <= start or not self.row_bytes:
            return None
        path, off = pieces[0][:2]
        return np.asarray(np.memmap(path, self.dtype, "c", off, (stop - start, *self.shape[1:])))

    def read_rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Read rows ``start .. stop-1`` (into ``out`` when given, without a copy)."""
        shape = (stop - start, *self.shape[1:])
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        if out.shape != shape or out.dtype != np.dtype(self.dtype) or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {self.dtype} array of shape {shape}")
        if not out.size:
            return out
        data = out.data.cast("B")
        for path, off, first, last in self._pieces(start, stop):
            with open(path, "rb", buffering=0) as f:
                f.seek(off)
                view = data[first * self.row_bytes:last * self.row_bytes]
                while view:
                    n = f.readinto(view)
                    if not n:
                        raise EOFError(f"{path} is shorter than its shape {self.shape}")
                    view = view[n:]
        return out

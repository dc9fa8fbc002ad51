"""The :class:`Scan` object: an open scan's projections, flats and darks by detector rows."""

from __future__ import annotations

import os
from types import TracebackType

import h5py
import numpy as np

from nsgen.scan.frames import Frames, read_selection
from nsgen.scan.h5 import H5File
from nsgen.scan.layout import PROJECTION, Located

# ----------------------------------------------------------------------------
# the scan
# ----------------------------------------------------------------------------


class Scan:
    """An open tomography scan; use :func:`open_scan` to create one.

    Attributes
    ----------
    path : str
        Absolute path of the scan file.
    data_path, image_key_path, angles_path : str or None
        The dataset paths actually used (after defaults and discovery).
    how : str
        Which layout rule found them (e.g. ``"APS Data Exchange ..."``).
    flats_source, darks_source : str
        Where the flats and darks come from (for logs).
    """

    def __init__(self, *, file: H5File, located: Located, data: h5py.Dataset, key: np.ndarray | None,
                 angles: np.ndarray | None, flats: Frames, darks: Frames, opened: list[H5File]) -> None:
        self._file = file
        self._data = data
        self._opened = opened
        self._key = key
        self._flats = flats
        self._darks = darks
        self._angles = angles
        self.path = file.path
        self.data_path = located.data_path
        self.image_key_path = located.image_key_path
        self.angles_path = located.angles_path
        self.how = located.how
        self.flats_source = flats.label
        self.darks_source = darks.label
        n_frames = data.shape[0]
        proj = np.arange(n_frames) if key is None else np.flatnonzero(key == PROJECTION)
        self._projections = Frames(data, proj, f"projections {file.name}:{located.data_path}")
        self._projection_indices = proj
        self._projection_indices.setflags(write=False)

    # -- context manager ------------------------------------------------------
    def __enter__(self) -> Scan:  # noqa: PYI034 - a Scan is never subclassed
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the scan file and any separate flats/darks files."""
        if hasattr(self, "_projections"):   # not set when opening failed
            self._projections.close()
        for f in self._opened:
            f.close()
        self._opened = []

    def __repr__(self) -> str:
        return (f"Scan({self.path!r}, data={self.data_path!r}, shape={self.shape}, dtype={self.dtype}, "
                f"flats={self.n_flats}, darks={self.n_darks})")

    # -- properties -----------------------------------------------------------
    @property
    def n_frames(self) -> int:
        """Number of frames in the data set (projections, flats, darks, invalid)."""
        return int(self._data.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_projections, n_rows, n_columns)`` of the projections only."""
        return (int(self._projection_indices.size), int(self._data.shape[1]), int(self._data.shape[2]))

    @property
    def dtype(self) -> np.dtype:
        """Data type of the projections in the file."""
        return self._data.dtype

    @property
    def angles(self) -> np.ndarray | None:
        """Projection angles in degrees (float64, one per projection), or ``None``."""
        return None if self._angles is None else self._angles.copy()

    @property
    def n_flats(self) -> int:
        """Number of flat-field frames averaged by :meth:`flat_mean`."""
        return self._flats.count

    @property
    def n_darks(self) -> int:
        """Number of dark-field frames averaged by :meth:`dark_mean` (0 for zero darks)."""
        return self._darks.count

    @property
    def projection_indices(self) -> np.ndarray:
        """Frame indices (into the data set) of the projections, ascending (read-only)."""
        return self._projection_indices

    @property
    def image_key(self) -> np.ndarray | None:
        """The scan's image_key per frame, or ``None`` if it has none."""
        return None if self._key is None else self._key.copy()

    # -- reading --------------------------------------------------------------
    def _rows(self, rows: slice) -> slice:
        if not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice, got {type(rows).__name__}")
        start, stop, step = rows.indices(self.shape[1])
        if step != 1:
            raise ValueError(f"rows must be a contiguous slice (step 1), got step {step}")
        return slice(start, max(start, stop))

    def flat_mean(self, rows: slice) -> np.ndarray:
        """Mean flat field over the flat frames for detector ``rows``.

        Parameters
        ----------
        rows : slice
            Contiguous detector rows.

        Returns
        -------
        numpy.ndarray
            ``(n_rows, n_columns)`` float32 (accumulated in float64).
        """
        return self._flats.mean(self._rows(rows), self.shape[2])

    def dark_mean(self, rows: slice) -> np.ndarray:
        """Mean dark field for detector ``rows``: ``(n_rows, n_columns)`` float32.

        All zeros if the scan was opened with ``darks_path="zeros"``.
        """
        return self._darks.mean(self._rows(rows), self.shape[2])

    @property
    def compressed_row_span(self) -> int | None:
        """Detector rows each compressed HDF5 chunk of the projections spans, or None.

        None for unfiltered data. Reading fewer rows than this decompresses whole chunks
        and keeps only some of their rows, so a scan read in row chunks is decompressed
        about ``span / chunk rows`` times. For TIFF frames: the rows of a compressed strip
        or tile (:meth:`~nsgen.scan.tiffstack.TiffStack.row_span`).
        """
        if not isinstance(self._data, h5py.Dataset):
            return self._data.row_span(self._projection_indices)
        try:
            if self._data.chunks is None or self._data.id.get_create_plist().get_nfilters() == 0:
                return None
        except Exception:  # noqa: BLE001 - virtual or unusual storage: no advice
            return None
        return int(min(self._data.chunks[1], self._data.shape[1]))

    @property
    def storage(self) -> str:
        """How the projections are stored (layout, chunks, compression), for ``inspect``."""
        d = self._data
        if not isinstance(d, h5py.Dataset):
            return str(d.describe(self._projection_indices))
        try:
            plist = d.id.get_create_plist()
            names = [plist.get_filter(i)[3] for i in range(plist.get_nfilters())]
        except Exception:  # noqa: BLE001 - virtual or unusual storage
            names = []
        names = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
        where = "contiguous" if d.chunks is None else f"chunks {tuple(d.chunks)}"
        return (f"HDF5 {where}{' (virtual dataset)' if d.is_virtual else ''}, "
                f"{'compression: ' + ', '.join(names) if names else 'uncompressed'}")

    @property
    def source_files(self) -> list[str]:
        """Every file the scan's data, flats and darks are read from (external links
        resolved), the scan file first, without repeats."""
        files = [self.path] if os.path.isfile(self.path) else []   # not a TIFF folder
        for ds in (self._data, self._flats.dataset, self._darks.dataset):
            for name in getattr(ds, "files", [ds.file.filename] if ds is not None else []):
                name = os.path.abspath(name)
                if name not in files:
                    files.append(name)
        return files

    def advise_projections(self, rows: slice, wait: bool = False) -> None:
        """Hint that the projections of detector ``rows`` will be read next.

        Where the reader reads the file directly (unfiltered data, see
        :meth:`read_projections`), the kernel starts fetching those bytes in the
        background (``posix_fadvise``); elsewhere, and once a read has chosen the h5py
        path, it does nothing. With ``wait``, return only once the bytes have about
        arrived (so that a following request does not compete with this one). Never
        raises for a bad file: the read reports it.
        """
        self._projections.advise(self._rows(rows), wait)

    def read_frames(self, frames: slice, out: np.ndarray) -> np.ndarray:
        """Read whole frames (every row; projections, flats and darks alike) into ``out``.

        Reading whole frames decompresses each compressed chunk once, in file order.

        Parameters
        ----------
        frames : slice
            Contiguous frame indices of the data set (step 1).
        out : numpy.ndarray
            C-contiguous ``(n_frames, n_rows, n_columns)`` array of :attr:`dtype`.
        """
        a, b, _ = frames.indices(self.n_frames)
        read_selection(self._data, f"frames {a}-{b - 1} of {self.path}", np.s_[a:b], out,
                       np.s_[...])
        return out

    def read_projections(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """Read the projections for detector ``rows``, in the file's dtype.

        Only those rows are read (HDF5 hyperslabs), one read per contiguous run
        of projection frames: a single read when the projections are one block.
        Flats, darks and invalid frames are never included.

        Parameters
        ----------
        rows : slice
            Contiguous detector rows.
        out : numpy.ndarray, optional
            C-contiguous ``(n_projections, n_rows, n_columns)`` array of
            :attr:`dtype` to read into.

        Returns
        -------
        numpy.ndarray
            ``(n_projections, n_rows, n_columns)``, the raw layout of SCIENCE B 0.2.
        """
        r = self._rows(rows)
        shape = (self.shape[0], r.stop - r.start, self.shape[2])
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape or out.dtype != self.dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous {shape} {self.dtype} array, got {out.shape} {out.dtype}"
            )
        if out.size:
            self._projections.read(r, out)
        return out


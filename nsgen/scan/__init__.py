"""Tomography scans as users have them: finding the data, reading detector rows.

This package is the only place that knows how a scan sits in its files. It reads
detector-row ranges of the projections (never the whole scan) and the mean flat and
dark fields for the same rows (SCIENCE.md Part A.6 and B 6.1). The engine's stages
use the :class:`Scan` interface only.

Modules
-------
``h5``      HDF5 plumbing: opening files, links, walking groups, one-line errors.
``layout``  where a scan's datasets are (:class:`ScanLayout`, defaults, discovery).
``direct``  reading rows of unfiltered datasets straight from the file.
``frames``  sets of frames (projections, flats, darks), their means, flats/darks files.
``scan``    the :class:`Scan` object.
``hdf``     :func:`open_scan` for NeXus/HDF5 files, :func:`create_frame_copy`.
``shifts``  :func:`shift_files`, the files of a scan's vertical shifts.

Frames are classified by ``image_key``: 0 projection, 1 flat, 2 dark, 3 invalid
(ignored). Flats and darks are found wherever they sit (before, between or after
the projections) and are never read as projections.
"""

from nsgen.scan.hdf import ZERO_DARKS, create_frame_copy, open_scan
from nsgen.scan.layout import (
                               DEFAULT_ANGLES_PATH,
                               DEFAULT_DATA_PATH,
                               DEFAULT_IMAGE_KEY_PATH,
                               ScanLayout,
)
from nsgen.scan.scan import Scan
from nsgen.scan.shifts import shift_files

__all__ = [
    "DEFAULT_ANGLES_PATH",
    "DEFAULT_DATA_PATH",
    "DEFAULT_IMAGE_KEY_PATH",
    "ZERO_DARKS",
    "Scan",
    "ScanLayout",
    "create_frame_copy",
    "open_scan",
    "shift_files",
]

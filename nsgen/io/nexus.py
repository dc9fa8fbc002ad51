"""Old import path of the scan reader, now :mod:`nsgen.scan` (an alias for branches
written before the split; new code imports :mod:`nsgen.scan`; delete once none does)."""

from nsgen.scan import (
    DEFAULT_ANGLES_PATH,
    DEFAULT_DATA_PATH,
    DEFAULT_IMAGE_KEY_PATH,
    ZERO_DARKS,
    Scan,
    ScanLayout,
    create_frame_copy,
    open_scan,
    shift_files,
)

__all__ = ["DEFAULT_ANGLES_PATH", "DEFAULT_DATA_PATH", "DEFAULT_IMAGE_KEY_PATH", "ZERO_DARKS",
           "Scan", "ScanLayout", "create_frame_copy", "open_scan", "shift_files"]

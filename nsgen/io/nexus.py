"""Former home of the scan reader, now the :mod:`nsgen.scan` package.

Kept as an alias so that code importing ``nsgen.io.nexus`` keeps working; new code
imports from :mod:`nsgen.scan`.
"""

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

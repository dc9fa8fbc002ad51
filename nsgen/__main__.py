"""``python -m nsgen``."""

import sys

from nsgen.cli import main

sys.exit(main())

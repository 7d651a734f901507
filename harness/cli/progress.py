"""The end of the progress bars: before a table goes to stdout, the terminal line the last bar
drew on (stderr) is erased and the cursor put back at its start, so the table never begins on
the bar's line. Bars are drawn only on a terminal's stderr; nothing is written otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

ERASE_LINE = "\r\x1b[2K"


def clear_progress(stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return
    if interactive:
        stream.write(ERASE_LINE)
        stream.flush()
    sys.stdout.flush()

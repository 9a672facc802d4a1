"""Background work below the request threads' CPU priority."""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger("facegate")

# The niceness background threads add to their own (Linux: per thread; the threads they start,
# such as the index library's, inherit it): building or updating an index for 10^6 rows is
# seconds of CPU, which requests on the same cores should not queue behind.
BACKGROUND_NICENESS = 10


def lower_priority() -> None:
    """Run the calling thread (and the threads it starts) below the request threads."""
    if sys.platform != "linux":
        return  # elsewhere the call would renice the whole process
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + BACKGROUND_NICENESS))
    except OSError:
        log.warning("could not lower a background thread's priority")

"""The event loop a kit process runs on (``<SVC>_EVENT_LOOP``): uvloop or Python's own. Kept
apart from the runtime so that the relay's child process can choose without importing it."""
from __future__ import annotations

import asyncio


def use_event_loop(kind: str) -> None:
    """Make ``kind`` (``uvloop`` or ``asyncio``) the event loop the process creates next: the
    worker's (made by faust's command line), the relay child's or a rebuild's (``asyncio.run``)."""
    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(None)

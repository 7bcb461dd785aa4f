"""The earning rules file, re-read when the operator changes it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from services.points.domain import EarningRules

log = logging.getLogger("points.rules")


class RulesFile:
    """The current :class:`EarningRules` of ``path``. A changed file is read again on the first
    use after it changed, once ``recheck_seconds`` have passed since the file was last looked
    at (a stat a second, rather than one per award: a rebuild awards thousands a second); an
    invalid one is logged and the previous rules stay in force."""

    def __init__(self, path: Path, recheck_seconds: float = 1.0):
        self.path = Path(path)
        self.recheck_seconds = recheck_seconds
        self._stamp: tuple[int, int] | None = None
        self._checked = time.monotonic()
        self._rules = self._read()

    def _read(self) -> EarningRules:
        st = self.path.stat()
        rules = EarningRules.from_yaml(self.path.read_text(encoding="utf-8"))
        self._stamp = (st.st_mtime_ns, st.st_size)
        return rules

    def current(self) -> EarningRules:
        now = time.monotonic()
        if now - self._checked < self.recheck_seconds:
            return self._rules
        self._checked = now
        try:
            st = self.path.stat()
            if (st.st_mtime_ns, st.st_size) != self._stamp:
                self._rules = self._read()
                log.info("earning rules reloaded from %s", self.path)
        except Exception as e:  # keep the rules in force until the file is fixed
            try:
                st = self.path.stat()
                self._stamp = (st.st_mtime_ns, st.st_size)
            except OSError:
                pass
            log.error("earning rules %s not reloaded: %r", self.path, e)
        return self._rules

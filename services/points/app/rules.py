"""The earning rules file, re-read when the operator changes it."""
from __future__ import annotations

import logging
from pathlib import Path

from services.points.domain import EarningRules

log = logging.getLogger("points.rules")


class RulesFile:
    """The current :class:`EarningRules` of ``path``. A changed file is read again on the next
    use; an invalid one is logged and the previous rules stay in force."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._rules = self._read()

    def _read(self) -> EarningRules:
        st = self.path.stat()
        rules = EarningRules.from_yaml(self.path.read_text(encoding="utf-8"))
        self._stamp = (st.st_mtime_ns, st.st_size)
        return rules

    def current(self) -> EarningRules:
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

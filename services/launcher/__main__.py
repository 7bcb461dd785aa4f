"""``python -m services.launcher`` — what ``make run`` calls (see :mod:`.launcher`)."""
from __future__ import annotations

import logging
import os
import sys

from .launcher import Config, Launcher


def main() -> int:
    cfg = Config.from_env()
    (cfg.var_dir / "log").mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(cfg.var_dir / "log" / "launcher.log")]
    if not sys.stdout.isatty():
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=(os.environ.get("LOG_LEVEL") or "info").upper(), handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if sys.stdout.isatty():
        print(f"starting the district (logs in {cfg.var_dir / 'log'}) ...", flush=True)
    return Launcher(cfg).run()


if __name__ == "__main__":
    sys.exit(main())

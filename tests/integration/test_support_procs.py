"""The tests' worker process: a port taken between choosing it and binding it is chosen again."""
from __future__ import annotations

import socket

from tests.integration.grid.support import grid_worker


async def test_a_worker_whose_chosen_port_is_taken_before_it_binds_starts_on_another(kafka, database_url, tmp_path):
    w = grid_worker(kafka, database_url, tmp_path / "worker.log")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        w.port = port  # as if another process had taken the free port the worker was given
        w.env["GRID_HTTP_PORT"] = str(port)
        w.start()
        try:
            await w.wait_ready(90)
            assert w.port != port
            assert f", {port}): address already in use" in (tmp_path / "worker.log").read_text()
        finally:
            assert w.stop() == 0

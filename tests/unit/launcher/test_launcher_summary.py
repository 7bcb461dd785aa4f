"""The live summary shows the departments' 三率 of the last closed month, read from the assessment API."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from services.kit.infra import free_port
from services.launcher import summary

CARDS = {f"110105.d{i}": {"response_rate": 0.9 - i / 20, "resolution_rate": 0.8, "satisfaction_rate": None,
                          "three_rates": 0.85 - i / 20} for i in range(8)}


async def _assessment():
    seen = []

    async def rankings(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.query), request.headers.get("Authorization")))
        if request.query["period"] != "2026-05":
            return web.json_response({"error": "not_published"}, status=404)
        items = [{"rank": i + 1, "entity_id": d, "score": 90.0 - i} for i, d in enumerate(CARDS)]
        return web.json_response({"items": items, "total": len(items)})

    async def card(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.query), request.headers.get("Authorization")))
        return web.json_response({"indicators": CARDS[request.match_info["entity_id"]]})

    app = web.Application()
    app.router.add_get("/v1/rankings", rankings)
    app.router.add_get("/v1/scorecards/department/{entity_id}", card)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", seen


async def test_the_best_and_worst_ranked_departments_with_their_three_rates():
    runner, url, seen = await _assessment()
    try:
        async with aiohttp.ClientSession() as session:
            got = await summary.departments(session, url, "tok", "2026-05", shown=4)
            assert await summary.departments(session, url, "tok", "2026-04") is None  # not published yet
    finally:
        await runner.cleanup()
    assert got["period"] == "2026-05" and got["ranked"] == 8
    assert [r["department"] for r in got["items"]] == ["110105.d0", "110105.d1", "110105.d6", "110105.d7"]
    assert got["items"][-1] == {"department": "110105.d7", "rank": 8, "score": 83.0, **CARDS["110105.d7"]}
    assert all(auth == "Bearer tok" for _, _, auth in seen)
    rows = summary.department_rows(got)
    assert rows[1].startswith("departments 2026-05 (8 ranked)") and "110105.d7" in rows[-1]
    assert " 50% " in rows[-1] and rows[-1].split()[-3] == "-"  # no 满意率 (no feedback): shown as -
    assert summary.department_rows(None) == []

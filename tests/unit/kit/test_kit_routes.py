"""Declared routes: what the kit validates before a route function runs, the helpers every
service's routes use (fetch-or-404, pagination) and what a declaration documents."""
from __future__ import annotations

from typing import Literal

import pytest
from multidict import MultiDict
from pydantic import BaseModel, Field

from schemas.common import CommunityId, GridId
from services.kit.identity import Principal
from services.kit.http import HttpError
from services.kit.sql import MAX_OFFSET, Paged
from services.kit.routes import (
    Answer,
    Documented,
    ErrorOut,
    Id,
    Instant,
    Page,
    PageOut,
    Route,
    found,
    openapi_path,
    page,
    template_params,
)


class Raw:
    """The part of an aiohttp request the kit reads."""

    def __init__(self, query: str = "", body: bytes = b"", too_large: bool = False):
        self.query = MultiDict(pair.split("=", 1) for pair in query.split("&") if pair)
        self.headers = {}
        self.body = body
        self.too_large = too_large
        self.client_max_size = 1024

    async def read(self) -> bytes:
        if self.too_large:
            from aiohttp.web_exceptions import HTTPRequestEntityTooLarge

            raise HTTPRequestEntityTooLarge(max_size=1024, actual_size=2048)
        return self.body


class GridRef(BaseModel):
    grid_id: GridId


class Filter(Page.sized(20, 100)):
    community_id: CommunityId | None = None
    status: Literal["open", "closed"] | None = None
    overdue: bool | None = None
    since: Instant | None = None
    tags: list[str] = Field(default_factory=list)


class Body(BaseModel):
    name: Id
    count: int = Field(ge=0)


async def fn(req):
    return req


def route(**kw) -> Route:
    return Route(kw.pop("template", "/v1/things"), "GET", fn, **kw)


async def bind(r: Route, raw: Raw, params=None):
    return await r.bind(raw, params or {}, Principal("app-1"))


async def test_a_query_is_read_leniently_with_defaults_and_empty_values_as_absent():
    req = await bind(route(query=Filter), Raw("limit=5&overdue=true&community_id=&status=open&tags=a&tags=b&x=1"))
    q = req.query
    assert (q.limit, q.offset, q.overdue, q.community_id, q.status, q.tags) == (5, 0, True, None, "open", ["a", "b"])
    assert (await bind(route(query=Filter), Raw(""))).query.limit == 20
    assert req.principal == Principal("app-1") and req.path is None and req.body is None


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"), ("limit=abc", "limit"),
    ("offset=1001", "offset"), ("cursor=not%20base64!", "cursor"),
    ("community_id=12", "community_id"), ("community_id=１１０１０５００１００２", "community_id"),
    ("status=lost", "status"), ("overdue=maybe", "overdue"), ("since=0.5", "since"),
    ("since=2026-11-01T08:00:00", "since"), ("tags=a%00", "tags"), ("status=op%00en", "status"),
])
async def test_an_invalid_query_value_is_a_422_naming_the_parameter(query, field):
    from urllib.parse import unquote

    with pytest.raises(HttpError) as e:
        await bind(route(query=Filter), Raw(unquote(query)))
    assert (e.value.status, e.value.error, e.value.field) == (422, "invalid_query", field)
    assert e.value.body().get("errors", [{"field": field}])[0]["field"] == field


async def test_path_parameters_are_validated_and_nul_or_lone_surrogates_refused():
    r = route(template="/v1/grids/{grid_id}", path=GridRef)
    assert (await bind(r, Raw(), {"grid_id": "110105001002003"})).path.grid_id == "110105001002003"
    for bad in ("123", "11010500100200\x00", "\ud800" * 15):
        with pytest.raises(HttpError) as e:
            await bind(r, Raw(), {"grid_id": bad})
        assert (e.value.status, e.value.error, e.value.field) == (422, "invalid_input", "grid_id")


async def test_a_body_model_is_validated_and_bad_bodies_answered_400_413_422():
    r = Route("/v1/things", "POST", fn, body=Body)
    assert (await bind(r, Raw(body=b'{"name": "a", "count": 2}'))).body == Body(name="a", count=2)
    cases = [(Raw(body=b"{oops"), 400, "malformed_json", "body"),
             (Raw(too_large=True), 413, "payload_too_large", "body"),
             (Raw(body=b'{"name": "a", "count": -1}'), 422, "invalid_input", "count"),
             (Raw(body=b'{"name": "a\\u0000", "count": 1}'), 422, "invalid_input", "name"),
             (Raw(body=b"[1]"), 422, "invalid_input", "body")]
    for raw, status, error, field in cases:
        with pytest.raises(HttpError) as e:
            await bind(r, raw)
        assert (e.value.status, e.value.error, e.value.field) == (status, error, field)


def test_a_declaration_must_name_every_path_parameter():
    with pytest.raises(TypeError):
        route(template="/v1/grids/{grid_id}")
    with pytest.raises(TypeError):
        route(template="/v1/grids/{id}", path=GridRef)


def test_found_is_the_value_or_a_404_naming_the_id():
    assert found({"a": 1}, "case", "c-1", "case_id") == {"a": 1}
    assert found([], "case", "c-1") == []
    with pytest.raises(HttpError) as e:
        found(None, "case", "c-1", "case_id")
    assert e.value.status == 404 and e.value.body() == {"error": "not_found", "detail": "no case 'c-1'", "field": "case_id"}


def test_a_page_answer_and_its_bounds():
    q = Page.sized(20, 100)(limit=7, offset=14)
    assert page(q, Paged([1, 2], 30, True, "abc")) == {
        "total": 30, "total_exact": True, "limit": 7, "offset": 14, "next_cursor": "abc", "items": [1, 2]}
    assert page(q, Paged([1], 1, True, None), ["one"])["items"] == ["one"]
    assert Page().limit == 50 and Page.sized(20, 100) is Page.sized(20, 100)
    assert PageOut[int].model_validate({"total": 1, "total_exact": True, "limit": 1, "offset": 0, "next_cursor": None,
                                        "items": [3]}).items == [3]
    assert Page(offset=MAX_OFFSET).offset == MAX_OFFSET


async def test_an_offset_past_its_bound_tells_to_use_the_cursor():
    with pytest.raises(HttpError) as e:
        await bind(route(query=Filter), Raw(f"offset={MAX_OFFSET + 1}"))
    assert e.value.field == "offset" and "cursor" in e.value.detail


def test_what_a_route_answers_is_documented_with_the_kits_own_statuses():
    assert set(route().answers()) == {200, 401, 503}
    assert set(route(query=Filter, auth=False, db=False).answers()) == {200, 422}
    post = Route("/v1/things", "POST", fn, body=Documented(Body), responses={200: Body, 409: "refused"})
    answers = post.answers()
    assert set(answers) == {200, 400, 401, 409, 413, 422, 503}
    assert answers[200] == Answer("OK", Body) and answers[409] == Answer("refused", ErrorOut)
    own = route(errors=lambda e: (e.status, [e.detail]), responses={200: list[str], 400: ("bad", list[str])})
    assert set(own.answers()) == {200, 400}


def test_path_templates_as_openapi_writes_them():
    assert template_params("/open311/v2/requests/{request_id:[^/]+}.json") == ["request_id"]
    assert openapi_path("/open311/v2/requests/{request_id:[^/]+}.json") == "/open311/v2/requests/{request_id}.json"
    assert openapi_path("/v1/scorecards/{entity_type}/{entity_id}") == "/v1/scorecards/{entity_type}/{entity_id}"


def test_an_answer_with_keys_that_are_not_strings_is_written_with_them_as_strings():
    from services.kit.http import dumps

    assert dumps({"a": [1, {"b": None}]}) == b'{"a":[1,{"b":null}]}'
    assert dumps({"by": {3: 1, "x": 2}}) == b'{"by":{"3":1,"x":2}}'
    with pytest.raises(TypeError):
        dumps({"x": object()})

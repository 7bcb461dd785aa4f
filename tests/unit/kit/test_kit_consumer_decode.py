"""The consumer's decode step: a record holding U+0000 leaves the fast typed path and becomes a
decode error (dead-lettered as ``nul_character``); the others decode as before. Each distinct
token of a batch is verified once, and checked at each record's time."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson

from schemas.envelope import encode, envelope_for
from schemas.grid import LogPatrol
from schemas.topics import GRID
from services.kit.consumer import BatchConsumer, Item
from services.kit.handlers import Handler, handles

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


class Patrols(Handler):
    service = "grid"

    @handles(LogPatrol)
    async def log(self, uow, cmd: LogPatrol) -> None:  # never called here
        raise AssertionError


def consumer() -> BatchConsumer:
    return BatchConsumer(service="grid", name="intake", topics=[GRID.intake], group_id="g", bootstrap="unused:9092",
                         pool=None, handler=Patrols())  # type: ignore[arg-type]


def value(worker: str = "gw-1", **env_over) -> bytes:
    payload = LogPatrol(patrol_id="p-1", grid_id="110105001002003", grid_worker_id=worker, started_at=T0, ended_at=T0)
    env = orjson.loads(encode(envelope_for(payload, source="/apps/grid-app")))
    env.update(env_over)
    return orjson.dumps(env)


def test_records_holding_a_nul_character_are_decode_errors_naming_the_field():
    items = [Item(GRID.intake.name, 0, i, key, v) for i, (key, v) in enumerate([
        (b"110105001002003", value()),
        (b"110105001002003", value(id="a\x00b")),
        (b"110105001002003", value(source="/apps/\x00")),
        (b"110105001002003", value(worker="gw\x00")),
        (b"k\x00\xff", b"garbage"),
        (b"k\x00", value()),  # a NUL in the key alone does not matter to decoding
        (b"110105001002003", value(worker="gw-\\u0000")),  # the text \u0000, not a NUL
    ])]
    consumer()._decode(items)
    ok, nul_id, nul_source, nul_data, garbage, nul_key, text = items
    assert ok.message is not None and ok.error is None
    assert (nul_id.error.reason, nul_id.error.field) == ("nul_character", "id")
    assert (nul_source.error.reason, nul_source.error.field) == ("nul_character", "source")
    assert (nul_data.error.reason, nul_data.error.field) == ("nul_character", "data.grid_worker_id")
    assert garbage.error.reason == "malformed_json"
    assert nul_key.message is not None
    assert text.message is not None and text.message.payload.grid_worker_id == "gw-\\u0000"
    assert all(it.message is None for it in (nul_id, nul_source, nul_data, garbage))


def test_each_token_of_a_batch_is_looked_up_once_and_checked_at_each_records_time(tmp_path):
    import time

    from services.kit.devidentity import claims_for, generate_key, mint, public_jwk, write_jwks
    from services.kit.identity import Principal, TokenVerifier, Unauthenticated
    from services.kit.settings import DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER

    key = generate_key()
    write_jwks(tmp_path / "jwks.json", [public_jwk(key)])
    v = TokenVerifier(tmp_path / "jwks.json", issuer=DEFAULT_JWT_ISSUER, audience=DEFAULT_JWT_AUDIENCE, leeway=0)
    now = time.time()
    token = mint({**claims_for("gw-1", ["grid_worker"], {"streets": ["110105001"]}, lifetime=600),
                  "iat": int(now) - 300, "nbf": int(now) - 300, "exp": int(now) + 300}, key).encode()
    looked_up = []
    real = v.verified
    v.verified = lambda t: looked_up.append(t) or real(t)  # type: ignore[method-assign]
    c = consumer()
    c.verifier = v
    stamps = [now - 60, now - 30, now + 400, now - 600, now]  # within, within, after exp, before iat, within
    items = [Item(GRID.intake.name, 0, i, b"k", value(), int(ts * 1000), 1, token) for i, ts in enumerate(stamps)]
    items.append(Item(GRID.intake.name, 0, 9, b"k", value(), int(now * 1000), 1, b"not.a.token"))
    c._decode(items)
    senders = [it.message.principal for it in items]
    assert [type(p) for p in senders[:5]] == [Principal, Principal, Unauthenticated, Unauthenticated, Principal]
    assert (senders[2].reason, senders[3].reason, senders[5].reason) == ("expired", "not_yet_valid", "malformed")
    assert senders[0].sub == "gw-1"
    assert looked_up == [token, b"not.a.token"]  # once per distinct token in the batch
    c._decode(items[:1])
    assert looked_up[2:] == [token]  # a new batch looks it up again (from the verifier's cache)


def test_on_another_services_events_a_type_not_handled_is_skipped_and_a_misleading_type_text_changes_nothing():
    """The consumer reads a record's ``type`` from its text first, as a hint for the typed fast
    path: a record whose type is written differently (an escape) is decoded all the same, one of
    a type the handler does not react to is ignored, and a malformed one is still an error."""
    import re

    from schemas.grid import CaseDismissed

    class Dismissals(Handler):
        service = "points"

        @handles(CaseDismissed)
        async def dismissed(self, uow, e) -> None:  # never called here
            raise AssertionError

    c = BatchConsumer(service="points", name="grid", topics=[GRID.events], group_id="g", bootstrap="unused:9092",
                      pool=None, handler=Dismissals())  # type: ignore[arg-type]
    dismissed = CaseDismissed(case_id="c-1", reason="重复", duplicate_of=None)
    plain = encode(envelope_for(dismissed, source="/services/grid"))
    escaped = plain.replace(b'"type":"grid.case.dismissed.v1"', b'"type":"grid.case.dismis\\u0073ed.v1"')
    assert escaped != plain
    closed = plain.replace(b'"type":"grid.case.dismissed.v1"', b'"type":"grid.case.closed.v1"')
    broken = re.sub(rb'"id":"[^"]*"', b'"id":7', closed)
    items = [Item(GRID.events.name, 0, i, b"k", v) for i, v in enumerate([plain, escaped, closed, broken])]
    c._decode(items)
    a, b, not_handled, malformed = items
    assert a.message is not None and a.message.payload == dismissed
    assert b.error is None and b.message is not None and b.message.payload == dismissed
    assert not_handled.ignored and not_handled.message is None and not_handled.error is None
    assert malformed.error is not None and malformed.error.reason == "invalid_envelope"


def test_a_type_not_handled_is_skipped_without_reading_its_data_exactly_where_the_full_decoding_would_skip_it():
    """A record of a type the handler does not react to is checked for its envelope alone
    (``skim_envelope``: its data is not validated); wherever the full decoding would refuse the
    value (its JSON, its attributes, data not an object, U+0000, another source), it is not
    skipped but dead-lettered with the full decoding's reason, as before."""
    from schemas.envelope import DecodeError, decode_envelope, skim_envelope
    from schemas.grid import CaseDismissed

    class Dismissals(Handler):
        service = "points"

        @handles(CaseDismissed)
        async def dismissed(self, uow, e) -> None:  # never called here
            raise AssertionError

    env = {"specversion": "1.0", "id": "e-1", "source": "/services/grid", "type": "grid.case.closed.v1",
           "time": "2026-11-22T08:00:00Z", "subject": "c-1", "data": {"case_id": "c-1", "on_time": True}}

    def raw(data: bytes = b'{"case_id":"c-1"}', **over) -> bytes:
        head = orjson.dumps({k: v for k, v in {**env, **over}.items() if k != "data"})
        return head[:-1] + b',"data":' + data + b"}"

    values = {
        "plain": orjson.dumps(env), "no data": orjson.dumps({k: v for k, v in env.items() if k != "data"}),
        "an extension": raw(traceparent="00-x"), "data null": raw(b"null"), "data a list": raw(b"[]"),
        "data 0": raw(b"0"), "data empty text": raw(b'""'), "NaN": raw(b'{"a":NaN}'), "Infinity": raw(b'{"a":Infinity}'),
        "huge float": raw(b'{"a":1e400}'), "long mantissa": raw(b'{"a":' + b"1" * 400 + b".0}"),
        "lone surrogate": raw(b'{"a":"\\ud800"}'), "bad UTF-8": raw(b'{"a":"\xff"}'), "trailing text": raw() + b" x",
        "NUL in data": raw(b'{"a":"\\u0000"}'), "id a number": raw(id=7), "no source": raw(source=""),
        "long source": raw(source="/" + "𝔸" * 460), "naive time": raw(time="2026-11-22T08:00:00"),
        "version 2": raw(specversion="2.0"), "not an object": b"[1]", "other source": raw(source="/services/orders"),
    }
    for name, v in values.items():
        try:
            full: object = decode_envelope(v)
        except DecodeError as e:
            full = e.reason
        skimmed = skim_envelope(v)
        if isinstance(full, str):
            assert skimmed is None, name
        else:  # the same attributes (an extension is not kept)
            assert skimmed is not None and all(getattr(skimmed, k) == getattr(full, k) for k in (
                "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "correlationid",
                "causationid")), name
    assert skim_envelope(values["plain"]).data == {}  # the data is not kept
    c = BatchConsumer(service="points", name="grid", topics=[GRID.events], group_id="g", bootstrap="unused:9092",
                      pool=None, handler=Dismissals())  # type: ignore[arg-type]
    items = [Item(GRID.events.name, 0, i, b"k", v) for i, v in enumerate(values.values())]
    c._decode(items)
    outcome = {name: "ignored" if it.ignored else it.error.reason for name, it in zip(values, items)}
    assert outcome == {
        "plain": "ignored", "no data": "ignored", "an extension": "ignored", "data null": "invalid_envelope",
        "data a list": "invalid_envelope", "data 0": "invalid_envelope", "data empty text": "invalid_envelope",
        "NaN": "malformed_json", "Infinity": "malformed_json", "huge float": "malformed_json",
        "long mantissa": "malformed_json", "lone surrogate": "malformed_json", "bad UTF-8": "malformed_json",
        "trailing text": "malformed_json", "NUL in data": "nul_character", "id a number": "invalid_envelope",
        "no source": "invalid_envelope", "long source": "invalid_envelope", "naive time": "invalid_envelope",
        "version 2": "invalid_envelope", "not an object": "not_an_object", "other source": "untrusted_source",
    }

"""README.md's policy section is generated from the policy tables and the OpenAPI documents
(``python -m services.kit.policydoc``, run by ``make schemas``) and kept current."""
from __future__ import annotations

from typing import ClassVar

from schemas.common import Command
from services.kit import policydoc
from services.kit.policy import SUB, Policy, allow


class Ping(Command):
    SUBJECT: ClassVar[str] = "x"
    x: str
    by: str | None = None


Ping.TYPE = "docsvc.thing.ping.v1"  # after the class: never in the contract's registry

DOC = {"paths": {
    "/healthz": {"get": {"responses": {}}},
    "/v1/things": {"get": {"security": [{"bearerAuth": []}], "x-roles": ["auditor", "resident"]}},
    "/v1/open": {"get": {"security": [{"bearerAuth": []}]}},
    "/v1/commands": {"post": {"security": [{"bearerAuth": []}], "x-roles": ["resident"]}},
}}


def test_the_section_lists_commands_per_role_and_reads_from_x_roles():
    policy = Policy("docsvc", {Ping: allow("resident", actor={"by": SUB}, note="once a day")})
    text = policydoc.render({"docsvc": policy, "later": None}, {"docsvc": DOC, "later": None})
    assert "| `docsvc.thing.ping.v1` | `resident` | `by` = the caller; once a day |" in text
    assert "No policy table yet: later." in text
    assert "| `resident` | `docsvc.thing.ping.v1` | `GET /v1/things` (docsvc) |" in text
    assert "| `auditor` | — | `GET /v1/things` (docsvc) |" in text
    assert "| `grid_worker` | — | — |" in text
    assert "Readable with any valid token (no `x-roles`): `GET /v1/open` (docsvc)." in text
    assert "/healthz" not in text and "/v1/commands" not in text  # public, and not a read


def test_the_section_is_replaced_between_its_markers_only():
    text = f"intro\n{policydoc.START}\nold\n{policydoc.END}\nrest\n"
    out = policydoc.replaced(text, "new\n")
    assert out == f"intro\n{policydoc.START}\nnew\n{policydoc.END}\nrest\n"
    assert policydoc.section(out) == "new\n"


def test_a_service_without_a_policy_module_is_skipped():
    assert policydoc.load_policy("no_such_service") is None


def test_readme_policy_section_is_current():
    """Stale after a policy table or a route's roles changed: run `make schemas`."""
    assert policydoc.section(policydoc.README.read_text(encoding="utf-8")) == policydoc.current()

"""Who may send which command: a service's policy table, checked by the kit on every path.

A service declares, once, which roles may send each of its commands, which fields of the
command name the sender (filled from the token, refused when they name someone else), and
which area of the command must lie in the sender's scope::

    POLICY = Policy("grid", {
        VerifyCase: allow("grid_worker", actor={"verifier_id": SUB}),
        ReportCase: (allow("grid_worker", actor={"reporter.id": SUB, "reporter.kind": "grid_worker"},
                           area=lambda c: c.grid_id),
                     allow("resident", actor={"reporter.id": SUB, "reporter.kind": "resident"})),
    })

    class GridHandler(Handler):
        service = "grid"
        policy = POLICY

The kit calls :meth:`Policy.admit` before the handler of each of the service's own commands,
whether it came over HTTP (refused with 401 or 403 before the database is touched) or from the
intake topic (refused with a rejection, reason ``unauthenticated`` or ``forbidden``). A command
the table does not list is refused to everyone. Reactions to other services' events are not
commands of a person and are not checked here.

What needs the state of an object (the grid of the case being verified, the assignee of an
order) is the handler's to check, with :func:`in_area` and ``uow.principal``; an object outside
the caller's scope is refused exactly as an unknown one, so that its existence does not leak.

The same table gives the documentation: :meth:`Policy.rows` (role → commands) feeds the
README's generated policy section (``make schemas``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, Sequence

from pydantic import BaseModel, ValidationError

from schemas.common import Payload

from .errors import Rejected
from .identity import ROLES, Principal, Scope, Unauthenticated

__all__ = ["SUB", "Grant", "allow", "Policy", "Refused", "in_area", "DISTRICT_ROLES", "sees_district",
           "read_scope"]

SUB = "{sub}"
"""An actor field's value: the token's ``sub`` itself."""

DISTRICT_ROLES = frozenset({"points_operator", "assessor", "auditor"})
"""Roles that act or read for the whole district: their token's scope is not consulted."""

PERSONAL_ROLES = frozenset({"resident", "party_member", "merchant"})
"""Roles that act for themselves (``sub`` is their id): they see only their own records."""


class Refused(Rejected):
    """A command its sender may not send: ``unauthenticated`` (no verified sender) or
    ``forbidden`` (role, actor field or area). HTTP answers 401 / 403."""

    STATUS = {"unauthenticated": 401, "forbidden": 403}

    @property
    def status(self) -> int:
        return self.STATUS[self.reason]


@dataclass(frozen=True)
class Grant:
    """Roles that may send a command, the actor fields they must fill with who they are, and
    the area (a street, community or grid id of the command) their scope must cover."""

    roles: frozenset[str]
    actor: Mapping[str, str] = field(default_factory=dict)
    area: Callable[[Any], str | None] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        # what every check needs, worked out once (a check runs for every command record)
        object.__setattr__(self, "_paths", tuple((path, tuple(path.split(".")), template)
                                                  for path, template in self.actor.items()))
        object.__setattr__(self, "_district", self.roles & DISTRICT_ROLES)

    def check(self, payload: Payload, principal: Principal) -> Payload:
        """``payload`` with its actor fields filled; :class:`Refused` where it names someone else
        or lies outside the principal's scope."""
        fill: dict[str, Any] | None = None
        for path, parts, template in self._paths:  # type: ignore[attr-defined]
            want = template.replace(SUB, principal.sub)
            have = _get_parts(payload, parts)
            if have is None:
                if fill is None:
                    fill = {}
                fill[path] = want
            elif have != want and _plain(have) != want:
                raise Refused("forbidden", f"{path} must be the caller ({want!r}), not {_plain(have)!r}", path)
        if self.area is not None and not (self._district and self._district & principal.roles):  # type: ignore[attr-defined]
            code = self.area(payload)
            if code is not None and not principal.scope.covers(code):
                raise Refused("forbidden", f"{code!r} is outside the caller's scope", None)
        return _filled(payload, fill) if fill else payload


def allow(*roles: str, actor: Mapping[str, str] | None = None, area: Callable[[Any], str | None] | None = None,
          note: str = "") -> Grant:
    """A :class:`Grant` to ``roles``."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"unknown roles: {unknown or 'none given'}")
    return Grant(frozenset(roles), dict(actor or {}), area, note)


class Policy:
    """A service's commands and the grants that allow them (see the module docstring)."""

    def __init__(self, service: str, commands: Mapping[type[Payload], Grant | Sequence[Grant]]):
        self.service = service
        self.commands: dict[type[Payload], tuple[Grant, ...]] = {
            cls: (g,) if isinstance(g, Grant) else tuple(g) for cls, g in commands.items()}
        for cls in self.commands:
            if cls.service() != service:
                raise ValueError(f"{cls.TYPE} is not a command of {service}")

    def admit(self, payload: Payload, principal: Principal | Unauthenticated | None) -> Payload:
        """The payload as its sender may send it (actor fields filled), or :class:`Refused`.
        ``principal``: the verified sender, or why there is none."""
        if principal is None:
            raise Refused("unauthenticated", "a command needs a verified sender (a JWT)")
        if isinstance(principal, Unauthenticated):
            raise Refused("unauthenticated", str(principal))
        grants = self.commands.get(type(payload), ())
        mine = [g for g in grants if g.roles & principal.roles]
        if not mine:
            raise _not_for(payload.TYPE, self.roles_for(type(payload)), principal)
        first: Refused | None = None
        for g in mine:
            try:
                return g.check(payload, principal)
            except Refused as e:
                first = first or e
        assert first is not None
        raise first

    def permits_type(self, message_type: str, principal: Principal | None) -> None:
        """:class:`Refused` when none of the principal's roles may send ``message_type`` at all
        (checked before the command's body is validated: a role's refusal does not depend on it)."""
        if principal is None:
            raise Refused("unauthenticated", "a command needs a verified sender (a JWT)")
        cls = next((c for c in self.commands if c.TYPE == message_type), None)
        roles = self.roles_for(cls) if cls is not None else frozenset()
        if not (roles & principal.roles):
            raise _not_for(message_type, roles, principal)

    def roles_for(self, cls: type[Payload]) -> frozenset[str]:
        return frozenset(r for g in self.commands.get(cls, ()) for r in g.roles)

    def rows(self) -> list[tuple[str, str, str]]:
        """(command type, roles, conditions) for the documentation, in table order."""
        out = []
        for cls, grants in self.commands.items():
            for g in grants:
                cond = [f"`{p}` = {'the caller' if t == SUB else '`' + t.replace(SUB, '<sub>') + '`'}"
                        for p, t in g.actor.items()]
                if g.area is not None:
                    cond.append("in the caller's scope")
                if g.note:
                    cond.append(g.note)
                out.append((cls.TYPE, ", ".join(f"`{r}`" for r in sorted(g.roles)), "; ".join(cond)))
        return out


def _not_for(message_type: str, roles: frozenset[str], principal: Principal) -> Refused:
    return Refused("forbidden", f"{message_type} may be sent by {', '.join(sorted(roles)) or 'nobody'}; "
                                f"the caller's roles are {', '.join(sorted(principal.roles)) or 'none'}")


# -- areas ------------------------------------------------------------------------------------------


def in_area(principal: Principal | None, code: str | None) -> bool:
    """Whether ``principal`` acts or reads for the area ``code`` (a street, community or grid
    id): a district-wide role, or a scope covering it."""
    if principal is None:
        return False
    if principal.roles & DISTRICT_ROLES:
        return True
    return code is not None and principal.scope.covers(code)


def sees_district(principal: Principal | None) -> bool:
    """Whether ``principal`` reads the whole district (``auditor``, ``assessor``, ``points_operator``)."""
    return principal is not None and bool(principal.roles & DISTRICT_ROLES)


def read_scope(principal: Principal) -> Scope | None:
    """The areas a principal's reads are limited to: None for a district-wide role, else its
    token's scope (empty for a resident, who reads only their own records)."""
    return None if sees_district(principal) else principal.scope


# -- payload paths ----------------------------------------------------------------------------------


def _get(obj: Any, path: str) -> Any:
    return _get_parts(obj, path.split("."))


def _get_parts(obj: Any, parts: Sequence[str]) -> Any:
    for part in parts:
        if obj is None:
            return None
        obj = obj.get(part) if type(obj) is dict else getattr(obj, part, None)
    return obj


def _plain(value: Any) -> Any:
    """An actor field's value as the text a template gives: an enum's value, a number as text."""
    if isinstance(value, Enum):
        value = value.value
    return value if type(value) is str else str(value)


def _filled(payload: Payload, fill: Mapping[str, Any]) -> Payload:
    """A copy of ``payload`` with dotted paths set, validated again so that a filled value obeys
    the field's type and the model's own rules (a model validator sees the filled value).

    Only the models on a filled path are rebuilt, from their field values as they are (no
    dump and re-parse: nested models, defaults and values that do not survive a round trip
    through ``model_dump`` are kept as they were); a parent left None is built from the filled
    fields alone. A token whose ``sub`` cannot stand in the field (too long, not the field's
    pattern) makes the command :class:`Refused` (``forbidden``), never an error of the kit."""
    tree: dict[str, Any] = {}
    for path, value in fill.items():
        *parents, last = path.split(".")
        at = tree
        for part in parents:
            at = at.setdefault(part, {})
        at[last] = value
    try:
        return _rebuilt(payload, tree)
    except ValidationError as e:
        err = e.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise Refused("forbidden", f"the caller's id cannot fill {', '.join(fill)}: {where}: {err['msg']}",
                      next(iter(fill))) from None


def _rebuilt(model: Any, changes: Mapping[str, Any]) -> Any:
    """``model`` (a pydantic model, a mapping or None) with ``changes`` applied; a nested
    mapping in ``changes`` changes the nested object of that name."""
    if model is None:
        return {k: _rebuilt(None, v) if isinstance(v, dict) else v for k, v in changes.items()}
    current = (lambda k: model.get(k)) if isinstance(model, Mapping) else (lambda k: getattr(model, k, None))
    new = {k: _rebuilt(current(k), v) if isinstance(v, dict) else v for k, v in changes.items()}
    if isinstance(model, Mapping):
        return {**model, **new}
    if not isinstance(model, BaseModel):
        raise TypeError(f"cannot fill a field of {type(model).__name__}")
    cls = type(model)
    by_name = bool(cls.model_config.get("populate_by_name") or cls.model_config.get("validate_by_name"))

    def key(name: str) -> str:
        alias = cls.model_fields[name].alias if name in cls.model_fields else None
        return alias if alias and not by_name else name

    data = {key(n): getattr(model, n) for n in model.model_fields_set if n in cls.model_fields}
    data.update(model.model_extra or {})
    data.update({key(n): v for n, v in new.items()})
    return cls.model_validate(data)


def roles_table(policies: Iterable[Policy]) -> list[tuple[str, str, str]]:
    """Every policy's rows, for the README."""
    return [row for p in policies for row in p.rows()]

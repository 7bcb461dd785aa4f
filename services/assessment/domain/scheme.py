"""Assessment schemes (考核方案): weights, scoring, alert thresholds, grade cut-offs.

A scheme gives, per entity type, weights over the three pillars

- ``organisation`` 组织建设,
- ``member_role`` 党员作用发挥,
- ``satisfaction`` 群众满意度,

and, inside each pillar, weights over catalogue indicators. How an indicator value maps to
0-100 points (``Scoring``):

- ``rate``: value × 100 (a rate 0-1);
- ``inverse_rate``: (1 − value) × 100 (返工率, 延期率: lower is better);
- ``target``: min(value / target, 1) × 100 (averages, counts: reaching the target is full marks);
- ``inverse_target``: 100 while value ≤ target, then target / value × 100 (handling time);
- ``score``: the value itself, clamped to 0-100 (review scores).

Composite: within a pillar, the weighted mean of the points of indicators that *have a
value*; across pillars, the weighted mean of pillars that have a value. Weights are thus
re-normalised over what has a value (an empty denominator never counts as 0).

Thresholds (``thresholds``) are on the indicator's raw value: an alert is raised when a
higher-is-better indicator is below it, or an inverse indicator above it. Grades: score ≥
``excellent`` → 优秀, ≥ ``good`` → 良好, ≥ ``fair`` → 一般, else 较差.

Formula parameters (``parameters``): ``basically_satisfied_weight`` (基本满意's weight in every
满意率, default 0.9, within 0..1) and ``three_rates`` (the weights of the 三率 composite over
``response_rate`` / ``resolution_rate`` / ``satisfaction_rate``, default 30/35/35, normalised
to sum to 1; each share within 0..1, at least one positive). A scheme change carries them as
weight keys ``basically_satisfied_weight`` and ``three_rates.<rate>`` (a share, like the
other weights), and they are among :meth:`Scheme.flat_weights`.

Validation (``InvalidScheme``, reason ``invalid_scheme``): weights positive, indicators
known and applicable to the entity type, pillars known and non-empty, targets positive for
target scorings, cut-offs 0-100 and descending. :meth:`Scheme.from_mapping` normalises
weights so each group sums to 1.
"""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.assessment import ChangeScheme, EntityType, Grade, SchemeChanged
from services.kit.errors import Rejected

from .indicators import CATALOGUE, DEFAULT_PARAMETERS, THREE_RATES, Indicator, Parameters

DEFAULT_SCHEME_PATH = Path(__file__).resolve().parent.parent / "schemes" / "default.yaml"


class Pillar(str, Enum):
    """The three pillars of the indicator system."""

    ORGANISATION = "organisation"  # 组织建设
    MEMBER_ROLE = "member_role"  # 党员作用发挥
    SATISFACTION = "satisfaction"  # 群众满意度


PILLAR_LABELS = {Pillar.ORGANISATION: "组织建设", Pillar.MEMBER_ROLE: "党员作用发挥", Pillar.SATISFACTION: "群众满意度"}

ScoringKind = Literal["rate", "inverse_rate", "target", "inverse_target", "score"]


class InvalidScheme(Rejected):
    """A scheme that breaks the rules above."""

    def __init__(self, detail: str, field: str | None = "weights"):
        super().__init__("invalid_scheme", detail, field)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scoring(_Frozen):
    """How an indicator value maps to 0-100 points."""

    mapping: ScoringKind
    target: float | None = None

    def points(self, value: float | None) -> float | None:
        if value is None:
            return None
        if self.mapping == "rate":
            p = value * 100
        elif self.mapping == "inverse_rate":
            p = (1 - value) * 100
        elif self.mapping == "target":
            p = value / self.target * 100  # type: ignore[operator]
        elif self.mapping == "inverse_target":
            p = 100.0 if value <= self.target else self.target / value * 100  # type: ignore[operator]
        else:
            p = value
        return min(100.0, max(0.0, p))


def default_scoring(indicator: Indicator) -> Scoring:
    return Scoring(mapping=indicator.default_scoring, target=indicator.default_target)  # type: ignore[arg-type]


class WeightedIndicator(_Frozen):
    """An indicator inside a pillar: its relative weight, and optionally its own scoring."""

    weight: float
    scoring: Scoring | None = None


class PillarWeights(_Frozen):
    weight: float
    indicators: dict[str, WeightedIndicator]


class EntityScheme(_Frozen):
    """The scheme for one entity type: pillars with their indicators, and alert thresholds."""

    pillars: dict[Pillar, PillarWeights]
    thresholds: dict[str, float] = Field(default_factory=dict)


class GradeCutoffs(_Frozen):
    """Lowest score of each grade; below ``fair`` is 较差."""

    excellent: float = 90.0
    good: float = 75.0
    fair: float = 60.0


class SchemeParameters(_Frozen):
    """The formula parameters of a scheme (see the module docstring)."""

    basically_satisfied_weight: float = DEFAULT_PARAMETERS.basically_satisfied_weight
    three_rates: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PARAMETERS.three_rates))

    def normalised(self) -> "SchemeParameters":
        total = sum(self.three_rates.values())
        if total <= 0:
            return self
        d = _divisor(self.three_rates.values())
        return self.model_copy(update={"three_rates": {k: v / d for k, v in self.three_rates.items()}})

    def formula_parameters(self) -> Parameters:
        return Parameters(basically_satisfied_weight=self.basically_satisfied_weight,
                          three_rates=tuple((k, self.three_rates.get(k, 0.0)) for k in THREE_RATES))


class Scheme(_Frozen):
    """A whole assessment scheme. Immutable; a change is a new scheme with a new id."""

    scheme_id: str
    name: str = ""
    description: str = ""
    effective_from: datetime
    grades: GradeCutoffs = GradeCutoffs()
    scoring: dict[str, Scoring] = Field(default_factory=dict)
    parameters: SchemeParameters = SchemeParameters()
    entity_types: dict[EntityType, EntityScheme]

    @model_validator(mode="after")
    def _check(self) -> "Scheme":
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> "Scheme":
        """Build from the data-file layout (see ``schemes/default.yaml``), validate, normalise.

        An indicator entry is either a number (its weight) or ``{weight, mapping?, target?}``.
        Raises :class:`InvalidScheme`.
        """
        if not isinstance(m, Mapping):
            raise InvalidScheme("a scheme must be a mapping", field="definition")
        data = dict(m)
        try:
            ets: dict[str, Any] = {}
            for et, es in (data.get("entity_types") or {}).items():
                pillars = {}
                for pname, p in ((es or {}).get("pillars") or {}).items():
                    inds = {}
                    for iname, spec in ((p or {}).get("indicators") or {}).items():
                        inds[iname] = _indicator_entry(spec)
                    pillars[pname] = {"weight": (p or {}).get("weight", 1.0), "indicators": inds}
                ets[et] = {"pillars": pillars, "thresholds": dict((es or {}).get("thresholds") or {})}
            data["entity_types"] = ets
            scheme = cls.model_validate(data)
        except ValidationError as e:
            raise InvalidScheme(_first_error(e), field="definition") from None
        except (TypeError, AttributeError, ValueError) as e:
            raise InvalidScheme(str(e), field="definition") from None
        return scheme.normalised()

    @classmethod
    def load(cls, path: str | Path = DEFAULT_SCHEME_PATH) -> "Scheme":
        """Read a scheme data file (YAML). Reading a file is the caller's I/O; parsing is pure."""
        import yaml

        with open(path, encoding="utf-8") as f:
            return cls.from_mapping(yaml.safe_load(f))

    def normalised(self) -> "Scheme":
        """Same scheme with each group of weights scaled to sum to 1 (idempotent: a group that
        already sums to 1 is left as it is)."""
        ets = {}
        for et, es in self.entity_types.items():
            ptotal = _divisor(p.weight for p in es.pillars.values())
            pillars = {}
            for pn, p in es.pillars.items():
                itotal = _divisor(i.weight for i in p.indicators.values())
                pillars[pn] = PillarWeights(
                    weight=p.weight / ptotal,
                    indicators={n: i.model_copy(update={"weight": i.weight / itotal}) for n, i in p.indicators.items()},
                )
            ets[et] = es.model_copy(update={"pillars": pillars})
        return self.model_copy(update={"entity_types": ets, "parameters": self.parameters.normalised()})

    def to_mapping(self) -> dict[str, Any]:
        """JSON-able form; ``Scheme.from_mapping(s.to_mapping())`` gives ``s`` back."""
        return self.model_dump(mode="json")

    # -- reading ---------------------------------------------------------------------

    def scoring_for(self, entity_type: EntityType | str, indicator: str) -> Scoring:
        """Entity-level override, else scheme-level override, else the catalogue default."""
        es = self.entity_types.get(EntityType(entity_type))
        if es:
            for p in es.pillars.values():
                wi = p.indicators.get(indicator)
                if wi is not None and wi.scoring is not None:
                    return wi.scoring
        if indicator in self.scoring:
            return self.scoring[indicator]
        return default_scoring(CATALOGUE[indicator])

    def formula_parameters(self) -> Parameters:
        """The parameters the indicator formulas take (基本满意's weight, the 三率 weights)."""
        return self.parameters.normalised().formula_parameters()

    def thresholds_for(self, entity_type: EntityType | str) -> dict[str, float]:
        es = self.entity_types.get(EntityType(entity_type))
        return dict(es.thresholds) if es else {}

    def grade(self, score: float | None) -> Grade | None:
        if score is None:
            return None
        g = self.grades
        if score >= g.excellent:
            return Grade.EXCELLENT
        if score >= g.good:
            return Grade.GOOD
        if score >= g.fair:
            return Grade.FAIR
        return Grade.POOR

    def flat_weights(self) -> dict[str, float]:
        """``{"grid.organisation": 0.3, "grid.organisation.patrols_logged": 0.5, ...}``, normalised."""
        n = self.normalised()
        out: dict[str, float] = {}
        for et, es in n.entity_types.items():
            for pn, p in es.pillars.items():
                out[f"{et.value}.{pn.value}"] = round(p.weight, 6)
                for iname, wi in p.indicators.items():
                    out[f"{et.value}.{pn.value}.{iname}"] = round(wi.weight, 6)
        out["basically_satisfied_weight"] = round(n.parameters.basically_satisfied_weight, 6)
        for rate, w in n.parameters.three_rates.items():
            out[f"three_rates.{rate}"] = round(w, 6)
        return dict(sorted(out.items()))

    # -- change ----------------------------------------------------------------------

    def with_weights(
        self, weights: Mapping[str, float], *, scheme_id: str, effective_from: datetime | None = None
    ) -> "Scheme":
        """A new scheme: these weights override this one's, then every group is re-normalised.

        Override values are on the scale of the normalised weights (the shares that
        :meth:`flat_weights` and ``scheme.changed`` show): with organisation 0.75 and
        satisfaction 0.25, ``{"grid.satisfaction": 0.75}`` makes them 0.5 / 0.5.

        Keys: ``<indicator>`` (wherever the indicator is used), ``<entity_type>.<pillar>``,
        or ``<entity_type>.<pillar>.<indicator>`` (adds the indicator to the pillar when it
        applies to the entity type); the formula parameters ``basically_satisfied_weight``
        (0..1) and ``three_rates.<rate>`` (a share 0..1 of the 三率 composite, the others
        re-normalised). Raises :class:`InvalidScheme`.
        """
        data = self.to_mapping()
        ets = data["entity_types"]
        params = data["parameters"]
        for key, w in weights.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool):
                raise InvalidScheme(f"weight of {key!r} must be a number, got {w!r}")
            parts = key.split(".")
            if key == "basically_satisfied_weight" or parts[0] == "three_rates":
                if not 0 <= w <= 1:
                    raise InvalidScheme(f"{key!r} must be within 0..1, got {w!r}")
                if key == "basically_satisfied_weight":
                    params["basically_satisfied_weight"] = float(w)
                elif len(parts) == 2 and parts[1] in THREE_RATES:
                    params["three_rates"][parts[1]] = float(w)
                else:
                    raise InvalidScheme(f"{key!r}: the 三率 weights are three_rates.<{'|'.join(THREE_RATES)}>")
                continue
            if not w > 0:
                raise InvalidScheme(f"weight of {key!r} must be a positive number, got {w!r}")
            if len(parts) == 1:
                hits = [
                    p["indicators"][key]
                    for es in ets.values()
                    for p in es["pillars"].values()
                    if key in p["indicators"]
                ]
                if not hits:
                    raise InvalidScheme(f"{key!r}: no such indicator in scheme {self.scheme_id!r}")
                for h in hits:
                    h["weight"] = float(w)
            elif len(parts) in (2, 3):
                et, pn = parts[0], parts[1]
                if et not in ets:
                    raise InvalidScheme(f"{key!r}: entity type {et!r} is not in the scheme")
                if pn not in {p.value for p in Pillar}:
                    raise InvalidScheme(f"{key!r}: unknown pillar {pn!r}")
                pillar = ets[et]["pillars"].get(pn)
                if len(parts) == 2:
                    if pillar is None:
                        raise InvalidScheme(f"{key!r}: pillar has no indicators for {et}")
                    pillar["weight"] = float(w)
                else:
                    if pillar is None:
                        pillar = ets[et]["pillars"][pn] = {"weight": 1.0, "indicators": {}}
                    entry = pillar["indicators"].setdefault(parts[2], {"weight": 1.0, "scoring": None})
                    entry["weight"] = float(w)
            else:
                raise InvalidScheme(f"{key!r}: a weight key is indicator, entity_type.pillar or entity_type.pillar.indicator")
        data["scheme_id"] = scheme_id
        if effective_from is not None:
            data["effective_from"] = effective_from.isoformat()
        return Scheme.from_mapping(data)


def _divisor(weights: Any) -> float:
    total = sum(weights)
    return 1.0 if abs(total - 1.0) < 1e-9 else total


def _indicator_entry(spec: Any) -> dict[str, Any]:
    if isinstance(spec, bool):
        raise TypeError("an indicator weight must be a number")
    if isinstance(spec, (int, float)):
        return {"weight": float(spec)}
    if isinstance(spec, Mapping):
        spec = dict(spec)
        entry: dict[str, Any] = {"weight": spec.pop("weight", 1.0)}
        if "scoring" in spec:
            entry["scoring"] = spec.pop("scoring")
        elif "mapping" in spec or "target" in spec:
            entry["scoring"] = {"mapping": spec.pop("mapping", None), "target": spec.pop("target", None)}
        if spec:
            raise TypeError(f"unknown keys in an indicator entry: {sorted(spec)}")
        return entry
    raise TypeError(f"an indicator entry is a weight or a mapping, got {spec!r}")


def _scoring_problems(where: str, indicator: str, s: Scoring | None) -> list[str]:
    if s is None:
        return []
    if s.mapping in ("target", "inverse_target") and not (s.target and s.target > 0):
        return [f"{where}: scoring {s.mapping} of {indicator} needs a positive target"]
    return []


def _problems(s: Scheme) -> list[str]:
    out: list[str] = []
    g = s.grades
    if not (100 >= g.excellent >= g.good >= g.fair >= 0):
        out.append("grade cut-offs must satisfy 100 ≥ excellent ≥ good ≥ fair ≥ 0")
    for name, sc in s.scoring.items():
        if name not in CATALOGUE:
            out.append(f"scoring: unknown indicator {name!r}")
        out += _scoring_problems("scoring", name, sc)
    pm = s.parameters
    if not 0 <= pm.basically_satisfied_weight <= 1:
        out.append(f"parameters.basically_satisfied_weight must be within 0..1, got {pm.basically_satisfied_weight}")
    for rate, w in pm.three_rates.items():
        if rate not in THREE_RATES:
            out.append(f"parameters.three_rates: {rate!r} is not one of {', '.join(THREE_RATES)}")
        if not w >= 0:
            out.append(f"parameters.three_rates.{rate}: weight must not be negative")
    if not sum(pm.three_rates.values()) > 0:
        out.append("parameters.three_rates: at least one weight must be positive")
    elif any(w > 1 for w in pm.normalised().three_rates.values()):
        out.append("parameters.three_rates: each share must be within 0..1")
    if not s.entity_types:
        out.append("a scheme needs at least one entity type")
    for et, es in s.entity_types.items():
        if not es.pillars:
            out.append(f"{et.value}: no pillars")
        for pn, p in es.pillars.items():
            where = f"{et.value}.{pn.value}"
            if not p.weight > 0:
                out.append(f"{where}: weight must be positive")
            if not p.indicators:
                out.append(f"{where}: no indicators")
            for iname, wi in p.indicators.items():
                ind = CATALOGUE.get(iname)
                if ind is None:
                    out.append(f"{where}: unknown indicator {iname!r}")
                    continue
                if et not in ind.applies_to:
                    out.append(f"{where}: {iname} does not apply to {et.value}")
                if not wi.weight > 0:
                    out.append(f"{where}.{iname}: weight must be positive")
                out += _scoring_problems(where, iname, wi.scoring)
        seen: dict[str, str] = {}
        for pn, p in es.pillars.items():
            for iname in p.indicators:
                if iname in seen:
                    out.append(f"{et.value}: {iname} is in both {seen[iname]} and {pn.value}")
                seen[iname] = pn.value
        for iname in es.thresholds:
            ind = CATALOGUE.get(iname)
            if ind is None or et not in ind.applies_to:
                out.append(f"{et.value}.thresholds: {iname!r} is not an indicator of {et.value}")
    return out


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def default_scheme() -> Scheme:
    """The scheme in ``schemes/default.yaml``."""
    return Scheme.load(DEFAULT_SCHEME_PATH)


def scheme_for_period(schemes: list[Scheme], period_end: datetime) -> Scheme | None:
    """The scheme in force at the last instant of a period: the latest ``effective_from``
    before ``period_end`` (ties: the greatest scheme id). A scheme that takes effect during a
    period therefore governs that period's scorecards."""
    eligible = [s for s in schemes if s.effective_from < period_end]
    if not eligible:
        return None
    return max(eligible, key=lambda s: (s.effective_from, s.scheme_id))


# ---------------------------------------------------------------------------------------
# Scheme aggregate: decide / evolve for assessment.scheme.change.v1
# ---------------------------------------------------------------------------------------


class SchemeState(_Frozen):
    """What the service knows about one scheme id (the aggregate of scheme changes)."""

    scheme: Scheme | None = None


def scheme_from_change(cmd: ChangeScheme, base: Scheme) -> Scheme:
    """The scheme a change command asks for: its ``definition``, or ``base`` with ``weights``."""
    if cmd.definition is not None:
        d = dict(cmd.definition)
        d["scheme_id"] = cmd.scheme_id
        d["effective_from"] = cmd.effective_from.isoformat()
        scheme = Scheme.from_mapping(d)
        return scheme.with_weights(cmd.weights, scheme_id=cmd.scheme_id) if cmd.weights else scheme
    return base.with_weights(cmd.weights, scheme_id=cmd.scheme_id, effective_from=cmd.effective_from)


def decide_scheme_change(state: SchemeState, cmd: ChangeScheme, base: Scheme) -> list[SchemeChanged]:
    """Validate a scheme change. Scheme ids are immutable: the same change again is a no-op,
    different content under an existing id is refused (``scheme_exists``)."""
    if cmd.definition is None and not cmd.weights:
        raise InvalidScheme("a scheme change needs weights or a definition")
    if cmd.base_scheme_id is not None and cmd.base_scheme_id != base.scheme_id:
        raise Rejected("unknown_scheme", f"base scheme {cmd.base_scheme_id!r} is not {base.scheme_id!r}", "base_scheme_id")
    scheme = scheme_from_change(cmd, base)
    if state.scheme is not None:
        if state.scheme == scheme:
            return []
        raise Rejected("scheme_exists", f"scheme {cmd.scheme_id!r} exists with other content; use a new scheme_id", "scheme_id")
    return [
        SchemeChanged(
            scheme_id=scheme.scheme_id,
            weights=scheme.flat_weights(),
            effective_from=scheme.effective_from,
            base_scheme_id=None if cmd.definition is not None else base.scheme_id,
            definition=scheme.to_mapping(),
        )
    ]


def scheme_from_event(event: SchemeChanged, base: Scheme | None = None) -> Scheme:
    """The scheme a ``scheme.changed`` event put in force (its definition, else base + weights)."""
    if event.definition is not None:
        return Scheme.model_validate(event.definition)
    if base is None:
        raise InvalidScheme("the event has no definition and no base scheme was given", field="definition")
    return base.with_weights(event.weights, scheme_id=event.scheme_id, effective_from=event.effective_from)


def evolve_scheme(state: SchemeState, event: SchemeChanged) -> SchemeState:
    return SchemeState(scheme=scheme_from_event(event))

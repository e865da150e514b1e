"""The playbooks file (playbooks.yaml): what ops can change without a release.

A playbook names a health signal and the scope it watches, the actions to take when the
signal holds, and when to undo them. It is validated on load: a mistake refuses to load
and names the file and line (datafiles.py), and nothing of a broken file is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    model_validator,
)

from paymend.datafiles import At, load_model, parse_duration
from paymend.domain.currencies import EXPONENTS

Duration = Annotated[float, BeforeValidator(parse_duration)]
SIGNALS = (
    "circuit_open",
    "ops_alert",
    "error_spike",
    "success_drop",
    "latency_spike",
    "traffic_drop",
)
SCOPES = ("channel", "channel_method", "channel_bank", "channel_region", "bank", "region")
SIMPLE_ACTIONS = ("open_circuit", "alert", "open_incident")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Scope = Literal["channel", "channel_method", "channel_bank", "channel_region", "bank", "region"]


class Trigger(_Strict):
    """When to act: `signal` fires on a key of `scope` (one, or a list) and holds for
    `for`."""

    signal: Literal[
        "circuit_open", "ops_alert", "error_spike", "success_drop", "latency_spike", "traffic_drop"
    ]
    scope: Scope | list[Scope]
    for_: Duration = Field(0.0, alias="for", ge=0)
    recent: Duration = Field(10.0, gt=0, le=60)  # the detectors' latest stretch
    baseline: Duration = Field(900.0, gt=0, le=1800)  # the stretch before it, compared with
    min_calls: int | None = Field(None, ge=1)  # overrides the detector's minimum volume
    threshold: float | None = Field(None, gt=0)  # overrides the detector's threshold

    @property
    def scopes(self) -> tuple[str, ...]:
        return (self.scope,) if isinstance(self.scope, str) else tuple(self.scope)


class Pause(_Strict):
    what: Literal["bank", "region"]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] | None = None


class PauseAction(_Strict):
    """Pause the signal's bank or region (for one method): customers are told the bank is
    under maintenance and offered other methods; no provider is called."""

    pause: Pause


def _per_currency(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            "give a threshold per currency in its minor units, e.g. {CNY: 500000, JPY: 50000}:"
            " 500000 is ¥5,000 but also ₩500,000 and 500 KWD"
        )
    return value


def _currency(code: str) -> str:
    if code not in EXPONENTS:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code (upper case)")
    return code


class Hold(_Strict):
    what: Literal["bank", "region"]
    # minor units per currency: a payment is held above its own currency's threshold;
    # payments in a currency not listed are not held
    above: Annotated[
        dict[Annotated[str, AfterValidator(_currency)], Annotated[int, Field(gt=0)]],
        BeforeValidator(_per_currency),
        Field(min_length=1),
    ]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] | None = None


class HoldAction(_Strict):
    """Hold the scope's payments above an amount (per currency) for manual review: while
    the bank or region misbehaves, a large charge waits for a person rather than risk a
    bad outcome."""

    hold: Hold


def _action_kind(value: Any) -> str:
    if isinstance(value, HoldAction) or (isinstance(value, dict) and "hold" in value):
        return "hold"
    return "pause" if isinstance(value, dict | PauseAction) else "action"


Action = Annotated[
    Annotated[Literal["open_circuit", "alert", "open_incident"], Tag("action")]
    | Annotated[PauseAction, Tag("pause")]
    | Annotated[HoldAction, Tag("hold")],
    Discriminator(_action_kind),
]


class Recover(_Strict):
    """Undo the actions once the signal has been clear for `after` (and a circuit the
    playbook opened has closed again: its probes proved the channel)."""

    after: Duration = Field(60.0, ge=0)


class Playbook(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,62}$")]
    description: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    severity: Literal["critical", "major", "minor"]
    when: Trigger
    do: list[Action] = Field(min_length=1)
    recover: Recover = Recover()

    @model_validator(mode="after")
    def _actions_fit_the_scope(self) -> Playbook:
        scopes = self.when.scopes
        scope = ", ".join(scopes)
        for i, action in enumerate(self.do):
            if action == "open_circuit" and not all(s.startswith("channel") for s in scopes):
                raise At(["do", i], f"open_circuit needs a channel scope, not '{scope}'")
            if isinstance(action, PauseAction | HoldAction):
                kind = "pause" if isinstance(action, PauseAction) else "hold"
                what = action.pause.what if isinstance(action, PauseAction) else action.hold.what
                if not all(what in s for s in scopes):
                    raise At(
                        ["do", i, kind, "what"], f"cannot {kind} a {what} from a '{scope}' signal"
                    )
        return self

    @property
    def actions(self) -> list[str]:
        return [a if isinstance(a, str) else next(iter(a.model_fields_set)) for a in self.do]


class PlaybookFile(_Strict):
    playbooks: list[Playbook]

    @model_validator(mode="after")
    def _unique_names(self) -> PlaybookFile:
        seen: set[str] = set()
        for i, p in enumerate(self.playbooks):
            if p.name in seen:
                raise At(["playbooks", i, "name"], f"a second playbook named '{p.name}'")
            seen.add(p.name)
        return self


def load_playbooks(path: str | Path) -> list[Playbook]:
    """Read and validate a playbooks file; raises DataFileError naming the line."""
    return load_model(PlaybookFile, path).playbooks


DEFAULT_PATH = Path(__file__).resolve().parent.parent / "playbooks.yaml"

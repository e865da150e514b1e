"""What a customer does after a failed payment, in the lab: the measure of issue 17.

With a `journeys:` section (lab/scenario.py) each good payment that fails is followed as
its customer lives it:

- **told**: the checkout answered `failed` (the customer reads the failure's message at
  once), or, for a failure the worker found later, a failure notice reached their phone
  (`notices: true`); without notices a late failure tells the customer nothing;
- **a next step**: what they were told suggests something other than repeating what just
  failed (failures/messages: a suggestion not marked `retry`, such as "choose another
  payment method"), in the customer's language, for the code customers are shown;
- **followed**: with probability `follow_advice` a customer with a next step comes back
  `return_after` later and pays the same order again with another of the scenario's
  methods (the same method, as another card, when there is no other), through the real
  engine; whether they follow, the method and the new instrument's truth are pure
  functions of the seed and the payment's number (lab/draws.py), so a run is repeatable;
- **recovered by the customer**: that payment succeeded.

Follow-up payments are numbered from JOURNEY_BASE (their draws never meet a good
payment's or an attack's) and kept out of the run's arrivals: `success_rate`, the oracle,
the naive checkout and regret stay the first payments', so `recovered_by_customer` sits
beside the engine's own recovery rather than inside it. The money figures (duplicate
charges, charged but failed) count the follow-ups too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from paymend.domain.clock import Clock
from paymend.failures.messages import Messages
from paymend.lab.arrivals import Arrival, truth_at
from paymend.lab.draws import stream
from paymend.lab.fraud import FRAUD_BASE
from paymend.lab.scenario import Scenario

JOURNEY_BASE = 2 * FRAUD_BASE  # the follow-up payments' numbers start here
LOCALE = "zh-CN"  # the lab's customers read Chinese (lab/runner.py)
FAILED_NOTICE = ":payment_failed"  # a failure notice's dedupe key ends so (store/notices.py)
JOURNEY_FIGURES = (
    "failed_payments",
    "told_next_step",
    "followed_advice",
    "recovered_by_customer",
    "recovered_by_customer_rate",
    "order_success_rate",
)
"""The customer-journey figures of the summary and the report, when the scenario has them."""

Pay = Callable[[Arrival, Arrival], Awaitable[None]]
"""The checkout: pays `follow_up` for the order (and the customer) of `original`."""


@dataclass(slots=True)
class Journeys:
    """One run's customer journeys. Inert for a scenario without a `journeys:` section."""

    scenario: Scenario
    told: dict[int, float] = field(default_factory=dict)  # arrival n -> told at (s)
    next_step: set[int] = field(default_factory=set)  # arrival numbers told a next step
    follow_ups: list[Arrival] = field(default_factory=list)  # as paid
    _by_payment: dict[str, Arrival] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.scenario.journeys is not None

    def paid(self, a: Arrival) -> None:
        """The checkout answered for a good payment (not an attack, not a follow-up): a
        notice may tell its customer later."""
        if a.payment_id is not None and a.n < FRAUD_BASE:
            self._by_payment[a.payment_id] = a

    def answered(self, a: Arrival, failure_code: str | None, ctx: Context) -> None:
        """The checkout told the customer of `a` that it failed (or not: then nothing)."""
        if self.active and a.n < FRAUD_BASE and a.status == "failed":
            self._tell(a, failure_code, ctx)

    def notice(self, dedupe_key: str, ctx: Context) -> None:
        """A notice reached a customer's phone: a failure notice tells them."""
        if not self.active or not dedupe_key.endswith(FAILED_NOTICE):
            return
        a = self._by_payment.get(dedupe_key.removesuffix(FAILED_NOTICE))
        if a is not None:
            self._tasks.append(asyncio.create_task(self._told_late(a, ctx)))

    async def _told_late(self, a: Arrival, ctx: Context) -> None:
        assert a.payment_id is not None
        self._tell(a, await ctx.failure_code(a.payment_id), ctx)

    def _tell(self, a: Arrival, failure_code: str | None, ctx: Context) -> None:
        spec = self.scenario.journeys
        if spec is None or a.n in self.told:
            return
        self.told[a.n] = ctx.clock.monotonic()
        if not has_next_step(ctx.messages, failure_code):
            return
        self.next_step.add(a.n)
        rng = stream(self.scenario.seed, "journey", a.n)
        if rng.random() >= spec.follow_advice:
            return
        later = self.told[a.n] + spec.return_after
        follow_up = Arrival(
            JOURNEY_BASE + a.n,
            later,
            another_method(self.scenario, a.method, rng.random()),
            a.region,
            a.bank,
            a.amount,
            truth_at(rng, self.scenario, later),
        )
        self._tasks.append(asyncio.create_task(self._come_back(a, follow_up, ctx)))

    async def _come_back(self, original: Arrival, follow_up: Arrival, ctx: Context) -> None:
        await ctx.clock.sleep(follow_up.t - ctx.clock.monotonic())
        self.follow_ups.append(follow_up)
        await ctx.pay(original, follow_up)

    def payment_ids(self) -> set[str]:
        """The follow-up payments' ids, kept out of the run's own figures."""
        return {f.payment_id for f in self.follow_ups if f.payment_id is not None}

    async def settle(self) -> bool:
        """Wait for every customer on their way back; False when none was."""
        if not self._tasks:
            return False
        while self._tasks:
            waiting, self._tasks = self._tasks, []
            await asyncio.gather(*waiting)
        return True

    def figures(
        self, arrivals: list[Arrival], status: Callable[[str | None], str | None]
    ) -> dict[str, Any]:
        """The journeys' figures: `status` gives a payment's final status by its id."""
        if not self.active:
            return {}
        paid = ("succeeded", "partially_refunded", "refunded")
        failed = [a for a in arrivals if status(a.payment_id) == "failed"]
        recovered = sum(status(f.payment_id) in paid for f in self.follow_ups)
        first = sum(status(a.payment_id) in paid for a in arrivals)
        n = len(arrivals)
        return {
            "failed_payments": len(failed),
            "told_next_step": sum(a.n in self.next_step for a in failed),
            "followed_advice": len(self.follow_ups),
            "recovered_by_customer": recovered,
            "recovered_by_customer_rate": round(recovered / len(failed), 4) if failed else None,
            "order_success_rate": round((first + recovered) / n, 4) if n else 0.0,
        }


@dataclass(frozen=True, slots=True)
class Context:
    """What a journey needs of the run: its clock, the customer messages, a payment's
    failure code by id, and the checkout."""

    clock: Clock
    messages: Messages
    failure_code: Callable[[str], Awaitable[str | None]]
    pay: Pay


def has_next_step(messages: Messages, failure_code: str | None) -> bool:
    """Whether the customer's message for the failure (the code they are shown) suggests
    something other than repeating what just failed."""
    file = messages.files.get(LOCALE) or messages.files["en"]
    code = messages.public_code(failure_code or "default")
    message = file.messages.get(code) or file.messages["default"]
    return any(not s.retry for s in message.actions)


def another_method(scenario: Scenario, method: str, roll: float) -> str:
    """One of the scenario's other methods, by their shares (`roll` uniform in [0, 1));
    the same method (another card of it) when the scenario has no other."""
    others = {m: share for m, share in scenario.methods.items() if m != method and share > 0}
    if not others:
        return method
    total = sum(others.values())
    for name, share in others.items():
        roll -= share / total
        if roll < 0:
            return name
    return next(reversed(others))

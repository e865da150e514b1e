"""The attempt loop: call, classify, decide, follow the decision, while the run has time.

A payment is worked on in *runs*: the checkout call (bounded by the checkout deadline)
and, when that is not enough, worker runs started by jobs (engine/settlement.py). Each
run calls the provider, classifies a failure (failures/classify.py), decides what to do
(failures/policy.py), and follows the decision: query an unknown outcome, fail over,
retry with backoff, refresh credentials, ask for 3-D Secure, or stop and tell the
customer. Each call is recorded (engine/recording.py) before the next one is made.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from paymend.domain.clock import Clock
from paymend.domain.failure import Action, Decision, Failure, Kind
from paymend.domain.ids import AttemptId
from paymend.domain.masking import mask_token
from paymend.domain.payment import Attempt, AttemptStatus, Payment
from paymend.engine.budget import RetryBudget
from paymend.engine.call_health import (
    count_call,
    count_found,
    count_shared,
    payment_context,
    verdict,
)
from paymend.engine.calls import Caller, CallOutcome
from paymend.engine.ids import IdFactory
from paymend.engine.recording import Recorder
from paymend.engine.settings import EngineSettings, Policy
from paymend.failures.classify import Classifier, RawAnswer
from paymend.failures.policy import DecisionContext, PriorAttempt, decide
from paymend.health.book import Health
from paymend.health.outcomes import Outcome
from paymend.routing.failover import Router
from paymend.store import payments as repo
from paymend.store.database import Connection, Store

Finish = Callable[[Connection], None]  # written in a run's last transaction
CARD_HISTORY = timedelta(days=30)  # the card networks' reattempt window
MIN_CALL_S = 0.05  # no call starts with less time than this left before the deadline


@dataclass(slots=True)
class Run:
    """One stretch of work on a payment: a checkout call or a worker continuation."""

    channels: tuple[str, ...]
    started: float  # on the monotonic clock
    deadline_s: float
    attempts: list[Attempt]
    card_tries: int | None = None  # the card's failed tries on other payments, 30 days
    # channels skipped for an open circuit: a failover may still probe one (health.allow)
    # when nothing else is left, or their breakers would never see a call again
    spare: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class AttemptLoop:
    """Works a payment's run: the checkout's, a worker's, a release's or a confirm's."""

    def __init__(
        self,
        settings: EngineSettings,
        store: Store,
        clock: Clock,
        ids: IdFactory,
        caller: Caller,
        classifier: Classifier,
        health: Health,
        router: Router,
        budget: RetryBudget,
        recorder: Recorder,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.ids = ids
        self.caller = caller
        self.classifier = classifier
        self.health = health
        self.router = router
        self.budget = budget
        self.recorder = recorder
        self._rng = rng  # the backoff jitter; the router draws from the same generator

    async def drive(
        self,
        payment: Payment,
        run: Run,
        outcome: CallOutcome | None = None,
        *,
        status_known: bool = False,
        finish: Finish | None = None,
    ) -> None:
        """Call the run's last attempt (unless its `outcome` is already in hand), then
        follow each decision while the run has time. `finish` writes in the run's last
        transaction (the checkout's answer to its Idempotency-Key)."""
        attempt = run.attempts[-1]
        while True:
            if outcome is None:
                outcome = await self.caller.authorize(
                    payment, attempt, self.call_timeout(run), pay_by=self.pay_by(payment)
                )
            following, inline, after_s = await self._after_call(
                payment, run, attempt, outcome, status_known=status_known, finish=finish
            )
            if following is None or not inline:
                return
            if after_s > 0:
                await self.clock.sleep(after_s)
            run.attempts.append(following)
            attempt, outcome, status_known = following, None, False

    async def _after_call(
        self,
        payment: Payment,
        run: Run,
        attempt: Attempt,
        outcome: CallOutcome,
        *,
        status_known: bool = False,
        finish: Finish | None = None,
    ) -> tuple[Attempt | None, bool, float]:
        """Classify, decide, query an unknown outcome if there is time, and record it all.
        Returns the next attempt (if any), whether it runs now, and the wait before it."""
        failure: Failure | None = None
        decision: Decision | None = None
        if self.settings.policy is Policy.NAIVE and outcome.status is not AttemptStatus.SUCCEEDED:
            return await self._naive(payment, attempt, outcome, finish)
        if outcome.status is not AttemptStatus.SUCCEEDED:
            failure = self._classify(attempt.provider, outcome)
            if run.card_tries is None:  # only a failure's decision needs the card's history
                run.card_tries = await self._card_tries(payment)
        counted: Outcome | None = None
        if not status_known:  # the call as it happened, before any status query
            counted = self._record_health(payment, attempt.provider, outcome, failure)
        if failure is not None:
            decision = decide(failure, self._context(payment, run, attempt, failure, status_known))
            if (
                decision.action is Action.QUERY_STATUS
                and not status_known
                and self._remaining(run) >= MIN_CALL_S
            ):
                outcome = await self.caller.requery(attempt, outcome, self.call_timeout(run))
                if outcome.status is AttemptStatus.SUCCEEDED:
                    failure = decision = None
                elif outcome.status is AttemptStatus.REQUIRES_ACTION:
                    failure, decision = self.awaits_authentication(attempt, outcome)
                elif outcome.status is AttemptStatus.FAILED:
                    ctx = self._context(payment, run, attempt, failure, True)
                    decision = decide(failure, ctx)
            if (
                decision is not None
                and decision.action is Action.QUERY_STATUS
                and outcome.status is AttemptStatus.FAILED
            ):
                # an error answer that leaves the outcome uncertain: the worker asks
                outcome = replace(outcome, status=AttemptStatus.UNKNOWN)
        if counted is not None:  # its bank and region count it once its outcome is known
            count_shared(
                self.health, payment, attempt.provider, counted, outcome, self._health_now()
            )
        if failure is not None and decision is not None:
            decision = self._within_budget(attempt, failure, decision)
        following, inline = self._follow(payment, run, attempt, decision)
        if decision is not None and decision.action is Action.REFRESH_CREDENTIALS:
            await self.caller.refresh_credentials(attempt.provider)
        after_s = decision.after_s if decision is not None else 0.0
        await self.recorder.record(
            payment,
            attempt,
            outcome,
            failure,
            decision,
            following=following,
            inline=inline,
            after_s=after_s,
            then=finish if following is None or not inline else None,
        )
        return following, inline, after_s

    async def _naive(
        self, payment: Payment, attempt: Attempt, outcome: CallOutcome, finish: Finish | None
    ) -> tuple[Attempt | None, bool, float]:
        failure = self._classify(attempt.provider, outcome)
        if outcome.status is AttemptStatus.UNKNOWN:
            outcome = replace(outcome, status=AttemptStatus.FAILED)
        action = (
            Action.AUTHENTICATE if failure.action is Action.AUTHENTICATE else Action.DO_NOT_RETRY
        )
        decision = Decision(action, "naive policy: one attempt, no query, no retry")
        await self.recorder.record(payment, attempt, outcome, failure, decision, then=finish)
        return None, False, 0.0

    def awaits_authentication(
        self, attempt: Attempt, outcome: CallOutcome
    ) -> tuple[Failure, Decision]:
        """A status query says the charge waits for the customer's 3-D Secure."""
        failure = self._classify(attempt.provider, replace(outcome, raw_code=outcome.query_code))
        decision = Decision(
            Action.AUTHENTICATE,
            f"status query: {outcome.query_code}; the customer must authenticate",
        )
        return failure, decision

    def _record_health(
        self, payment: Payment, channel: str, outcome: CallOutcome, failure: Failure | None
    ) -> Outcome | None:
        """Count the call under its channel's keys (engine/call_health.py); how it counted
        it, or None when nothing is counted (the naive policy keeps no health)."""
        if self.settings.policy is Policy.NAIVE:
            return None
        v = verdict(outcome, failure)
        at = self._health_now() if outcome.ended_at is None else outcome.ended_at.timestamp()
        count_call(self.health, payment, channel, outcome, at, v)
        return v

    def found(self, payment: Payment, attempt: Attempt, found: AttemptStatus) -> None:
        """The worker's status query told what became of an attempt whose outcome was
        unknown: health counts it now (engine/call_health.py)."""
        if self.settings.policy is Policy.NAIVE or attempt.status is not AttemptStatus.UNKNOWN:
            return
        ended, latency = attempt.finished_at, attempt.latency_ms
        count_found(
            self.health, payment, attempt.provider, ended, latency, found, self._health_now()
        )

    def _health_now(self) -> float:
        """Epoch seconds: breakers shared through Redis need a time all processes share."""
        return self.clock.now().timestamp()

    def _within_budget(self, attempt: Attempt, failure: Failure, decision: Decision) -> Decision:
        """A same-channel retry spends the channel's retry budget; when it is spent, the
        payment stops here instead of adding load to a struggling provider."""
        same_channel = (decision.channel or attempt.provider) == attempt.provider
        if decision.action is not Action.RETRY_LATER or not same_channel:
            return decision
        if self.budget.try_retry(attempt.provider, self.clock.monotonic()):
            return decision
        kind = Action.CUSTOMER_ACTION if failure.kind is Kind.BUSINESS else Action.DO_NOT_RETRY
        return Decision(
            kind,
            f"{decision.reason}; but {attempt.provider}'s retry budget is spent: not retried",
            alert_ops=decision.alert_ops,
        )

    async def _card_tries(self, payment: Payment) -> int:
        token = payment.token
        if token is None:
            return 0
        since = self.clock.now() - CARD_HISTORY
        return await self.store.run(
            lambda conn: repo.card_tries_since(conn, token, since, excluding=payment.id)
        )

    def _remaining(self, run: Run) -> float:
        return run.deadline_s - (self.clock.monotonic() - run.started)

    def time_left(self, payment: Payment) -> float:
        """Seconds left for retries and failover on this payment, all runs together."""
        if payment.created_at is None:
            return self.settings.settle_within_s
        spent = (self.clock.now() - payment.created_at).total_seconds()
        return self.settings.settle_within_s - spent

    def pay_by(self, payment: Payment) -> datetime | None:
        """The payment's deadline: retries and failover end there, so a charge the
        customer could still make after it (an unpaid cashier page) must end there too."""
        if payment.created_at is None:
            return None
        return payment.created_at + timedelta(seconds=self.settings.settle_within_s)

    def call_timeout(self, run: Run) -> float:
        """A call may not outlive its run: past the deadline the outcome is unknown and
        the worker finishes the payment."""
        return max(MIN_CALL_S, min(self.settings.provider_timeout_s, self._remaining(run)))

    def _classify(self, channel: str, outcome: CallOutcome) -> Failure:
        return self.classifier.classify(
            self.caller.code_map(channel), RawAnswer(outcome.raw_code, outcome.raw_message)
        )

    def _context(
        self, payment: Payment, run: Run, attempt: Attempt, failure: Failure, status_known: bool
    ) -> DecisionContext:
        earlier = [a for a in run.attempts if a.id != attempt.id]
        tried = {a.provider for a in run.attempts}
        left = [c for c in run.channels if c not in tried]
        if not left and failure.failover:  # the last resort: a tripped channel
            left = self.router.last_resort(
                payment_context(payment), attempt.provider, run.spare, tried, self._health_now()
            )
        return DecisionContext(
            channel=attempt.provider,
            attempts=[
                *(PriorAttempt(a.provider, a.unified_code) for a in earlier),
                PriorAttempt(attempt.provider, failure.code),
            ],
            channels_left=left,
            card_reattempts_30d=(run.card_tries or 0) + len(earlier),
            remaining_s=self.time_left(payment),
            credentials_refreshed=any(
                a.provider == attempt.provider and a.decision == Action.REFRESH_CREDENTIALS.value
                for a in earlier
            ),
            status_known=status_known,
            jitter=lambda cap: self._rng.uniform(0, cap),
        )

    def _follow(
        self, payment: Payment, run: Run, attempt: Attempt, decision: Decision | None
    ) -> tuple[Attempt | None, bool]:
        """The next attempt the decision calls for, and whether it fits in this run (if
        not, a job runs it later and the payment stays `processing`)."""
        if decision is None or decision.action not in (
            Action.FAILOVER,
            Action.RETRY_LATER,
            Action.REFRESH_CREDENTIALS,
        ):
            return None, False
        if len(run.attempts) >= self.settings.max_attempts:
            return None, False
        channel = decision.channel or attempt.provider
        probe = run.spare.get(channel)
        if probe is not None and not self.router.take_probe(probe, self._health_now()):
            return None, False  # a tripped channel as the last resort: its probe was taken
        following = self.new_attempt(payment, attempt.seq + 1, channel, decision.reason)
        return following, self._remaining(run) - decision.after_s >= MIN_CALL_S

    def new_attempt(self, payment: Payment, seq: int, channel: str, reason: str) -> Attempt:
        return Attempt(
            id=AttemptId(self.ids.new("att")),
            payment_id=payment.id,
            seq=seq,
            provider=channel,
            trace_id=payment.trace_id,
            reason=reason,
            request={
                "amount": payment.amount.minor,
                "currency": payment.amount.currency,
                "method": payment.method,
                "bank": payment.bank,
                "region": payment.region,
                "token": mask_token(payment.token),
                "customer": payment.customer.masked(),
            },
        )

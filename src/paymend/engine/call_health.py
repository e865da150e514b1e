"""How a provider call counts for health, and when.

A call counts under every key of its payment's context (health/keys.py): the channel's
own keys at once, whatever the outcome, because routing and breakers must step around a
channel that does not answer in time. A bank or a region across channels is another
matter: what watches it (the `bank-down` playbook) pauses every customer of the bank,
so it counts a timeout only once a status query has told what it was. A switch that
answers late but charges is a slow bank, not a bank that is down: counted as failures
at once, its timeouts paused a bank that was charging a third of them (docs/lab.md).

When the query finds the charge, the channel's windows count that call as a success
from then on (`Health.settle`); the breakers keep what they judged.
"""

from __future__ import annotations

from datetime import datetime

from paymend.domain.failure import Failure
from paymend.domain.payment import AttemptStatus, Payment
from paymend.engine.calls import CallOutcome
from paymend.health.book import Health
from paymend.health.keys import scoped_key
from paymend.health.outcomes import Outcome
from paymend.routing.failover import payment_keys
from paymend.routing.ranking import PaymentContext

# what a status query's answer says of a call that had none
_FOUND = {
    AttemptStatus.SUCCEEDED: Outcome.SUCCESS,  # charged: the bank worked
    AttemptStatus.REQUIRES_ACTION: Outcome.BUSINESS,  # it asks the payer to authenticate
    AttemptStatus.FAILED: Outcome.UNKNOWN,  # nothing moved: the call failed after all
}


def payment_context(payment: Payment) -> PaymentContext:
    """What routing knows of a stored payment."""
    return PaymentContext(
        payment.method,
        payment.amount.currency,
        payment.region,
        payment.bank,
        payment.amount.minor,
    )


def channel_keys(payment: Payment, channel: str) -> tuple[str, ...]:
    """The channel's own keys for the payment: the channel, and the channel per scope."""
    return payment_keys(payment_context(payment), channel)


def shared_keys(payment: Payment) -> tuple[str, ...]:
    """The payment's bank and region across every channel."""
    keys: tuple[str, ...] = ()
    if payment.bank is not None:
        keys += (scoped_key("*", "bank", payment.bank),)
    if payment.region is not None:
        keys += (scoped_key("*", "region", payment.region),)
    return keys


def verdict(outcome: CallOutcome, failure: Failure | None) -> Outcome:
    """Only technical failures and unknowns count against a channel; a decline shows it
    works."""
    if failure is None or outcome.status is AttemptStatus.SUCCEEDED:
        return Outcome.SUCCESS
    if not failure.counts_against_health:
        return Outcome.BUSINESS
    if outcome.status is AttemptStatus.UNKNOWN or outcome.answered is None:
        return Outcome.UNKNOWN
    return Outcome.TECHNICAL


def count_call(
    health: Health, payment: Payment, channel: str, outcome: CallOutcome, at: float, v: Outcome
) -> None:
    """Count a call under the channel's own keys as it ended (`at`, epoch seconds)."""
    health.record(channel_keys(payment, channel), at, v, outcome.latency_ms)


def count_shared(
    health: Health,
    payment: Payment,
    channel: str,
    counted: Outcome,
    outcome: CallOutcome,
    at: float,
) -> None:
    """Count a call under its bank and region, once its outcome is known: `counted` is
    how its channel counted it, `outcome` what was recorded after any status query. Still
    unknown: the worker's query will tell (`count_found`)."""
    if outcome.status is AttemptStatus.UNKNOWN:
        return
    if counted is Outcome.UNKNOWN and outcome.query_code is not None:  # asked at once
        ended, latency = outcome.ended_at, outcome.latency_ms
        count_found(health, payment, channel, ended, latency, outcome.status, at)
        return
    keys = shared_keys(payment)
    if keys:
        health.record(keys, at, counted, outcome.latency_ms)


def count_found(
    health: Health,
    payment: Payment,
    channel: str,
    ended_at: datetime | None,
    latency_ms: int | None,
    found: AttemptStatus,
    now: float,
) -> None:
    """A status query told what became of a call counted `unknown` when it ended
    (`ended_at`): its bank and region count it now, and a charge moves it to a success
    in the channel's windows. `ended_at` None: a call no health ever counted (a crash
    left it pending), nothing to do."""
    outcome = _FOUND.get(found)
    if ended_at is None or outcome is None:
        return
    if outcome is Outcome.SUCCESS:
        health.settle(channel_keys(payment, channel), ended_at.timestamp(), outcome)
    keys = shared_keys(payment)
    if keys:
        health.record(keys, now, outcome, latency_ms)

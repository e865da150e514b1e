"""The payment, attempt and refund state machines, checked by random event sequences."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymend.domain.errors import Conflict, IllegalTransition, InvalidInput
from paymend.domain.ids import AttemptId, MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import (
    ATTEMPT_EDGES,
    PAYMENT_EDGES,
    Attempt,
    AttemptStatus,
    Payment,
    PaymentStatus,
)


def new_payment(amount: int = 10_000) -> Payment:
    return Payment(PaymentId("pay_1"), MerchantId("mer_1"), "o-1", Money(amount, "CNY"), "card")


def test_the_happy_path() -> None:
    p = new_payment()
    for s in (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED):
        p.transition(s)
    p.reserve_refund(4_000)
    p.settle_refund(4_000, succeeded=True)
    # a tuple, so the type checker does not take the status as fixed from here on
    assert (p.status, p.refundable) == (PaymentStatus.PARTIALLY_REFUNDED, 6_000)
    p.reserve_refund(6_000)
    p.settle_refund(6_000, succeeded=True)
    assert p.status is PaymentStatus.REFUNDED
    assert p.refundable == 0


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), PaymentStatus.SUCCEEDED),  # created -> succeeded skips processing
        ((PaymentStatus.PROCESSING, PaymentStatus.FAILED), PaymentStatus.SUCCEEDED),
        ((PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED), PaymentStatus.FAILED),
        ((PaymentStatus.CANCELED,), PaymentStatus.PROCESSING),
    ],
)
def test_illegal_payment_transitions_raise(
    path: tuple[PaymentStatus, ...], illegal: PaymentStatus
) -> None:
    p = new_payment()
    for s in path:
        p.transition(s)
    before = p.status
    with pytest.raises(IllegalTransition):
        p.transition(illegal)
    assert p.status is before


def test_unknown_attempt_is_resolved_only_to_success_or_failure() -> None:
    a = Attempt(AttemptId("att_1"), PaymentId("pay_1"), 1, "sim_a")
    a.transition(AttemptStatus.UNKNOWN)
    with pytest.raises(IllegalTransition):
        a.transition(AttemptStatus.PENDING)
    a.transition(AttemptStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        a.transition(AttemptStatus.FAILED)


def test_only_a_settled_refund_makes_a_payment_refunded() -> None:
    p = new_payment()
    p.transition(PaymentStatus.PROCESSING)
    p.transition(PaymentStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        p.transition(PaymentStatus.REFUNDED)
    p.reserve_refund(100)
    p.settle_refund(100, succeeded=False)  # a failed refund changes no status
    assert p.status is PaymentStatus.SUCCEEDED and p.amount_refunded == 0


def test_refund_of_unpaid_payment_is_refused() -> None:
    p = new_payment()
    p.transition(PaymentStatus.PROCESSING)
    with pytest.raises(InvalidInput) as info:
        p.reserve_refund(100)
    assert info.value.code == "payment_not_refundable"


def test_a_refund_that_fits_but_for_one_in_flight_is_a_conflict_not_bad_input() -> None:
    p = new_payment(10_000)
    p.transition(PaymentStatus.PROCESSING)
    p.transition(PaymentStatus.SUCCEEDED)
    assert p.reserve_refund(6_000) == 6_000
    with pytest.raises(Conflict) as racing:
        p.reserve_refund(5_000)  # 10,000 captured: it fits once the 6,000 settle or fail
    assert racing.value.code == "refund_in_progress" and racing.value.status == 409
    with pytest.raises(Conflict):
        p.reserve_refund()  # "the rest" while a refund is in flight
    with pytest.raises(InvalidInput) as too_much:
        p.reserve_refund(10_001)  # more than was ever captured
    assert too_much.value.code == "refund_exceeds_captured"
    assert p.amount_refund_pending == 6_000


def test_reserving_the_rest_takes_what_was_not_refunded() -> None:
    p = new_payment(10_000)
    p.transition(PaymentStatus.PROCESSING)
    p.transition(PaymentStatus.SUCCEEDED)
    p.settle_refund(p.reserve_refund(2_500), succeeded=True)
    assert p.reserve_refund() == 7_500


def test_attempt_idempotency_key_is_derived_from_the_attempt() -> None:
    a = Attempt(AttemptId("att_xyz"), PaymentId("pay_1"), 1, "sim_a")
    b = Attempt(AttemptId("att_xyz"), PaymentId("pay_1"), 1, "sim_b")
    assert a.idempotency_key == b.idempotency_key == "paymend-att_xyz"


# -- property tests over random event sequences ------------------------------------------

payment_events = st.lists(
    st.one_of(
        st.tuples(st.just("to"), st.sampled_from(list(PaymentStatus))),
        st.tuples(st.just("reserve"), st.none() | st.integers(min_value=-50, max_value=12_000)),
        st.tuples(st.just("settle"), st.booleans()),
    ),
    max_size=40,
)


@given(st.integers(min_value=1, max_value=10_000), payment_events)
def test_no_event_sequence_breaks_the_payment_invariants(
    amount: int, events: list[tuple[str, Any]]
) -> None:
    p = new_payment(amount)
    reserved: list[int] = []
    for kind, arg in events:
        before = (p.status, p.amount_refunded, p.amount_refund_pending)
        try:
            if kind == "to":
                p.transition(arg)
                assert arg in PAYMENT_EDGES[before[0]], "an edge the machine does not have"
                assert arg not in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED)
            elif kind == "reserve":
                reserved.append(p.reserve_refund(arg))
            elif reserved:
                p.settle_refund(reserved.pop(0), succeeded=arg)
        except (IllegalTransition, InvalidInput, Conflict):
            # a refused event changes nothing
            assert (p.status, p.amount_refunded, p.amount_refund_pending) == before
        assert p.amount_refunded >= 0
        assert p.amount_refund_pending >= 0
        assert p.amount_refunded + p.amount_refund_pending <= p.amount.minor
        if p.status is PaymentStatus.REFUNDED:
            assert p.amount_refunded == p.amount.minor
        if p.status is PaymentStatus.PARTIALLY_REFUNDED:
            assert 0 < p.amount_refunded < p.amount.minor


@given(st.lists(st.sampled_from(list(AttemptStatus)), max_size=10))
def test_attempts_only_move_along_their_edges(targets: list[AttemptStatus]) -> None:
    a = Attempt(AttemptId("att_1"), PaymentId("pay_1"), 1, "sim_a")
    for target in targets:
        before = a.status
        try:
            a.transition(target)
        except IllegalTransition:
            assert a.status is before
            assert target not in ATTEMPT_EDGES[before]
        else:
            assert target in ATTEMPT_EDGES[before]

"""classify(provider, raw) -> Failure.

Transport codes (timeouts, resets) come first, whatever the provider; then the most
specific provider code (e.g. Alipay's sub_code before its gateway code). A code no map
knows becomes `unrecognized_response`: money may have moved, so the provider is asked
before anything else; it is counted, and `paymend explain-code --unmapped` lists it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter

from paymend.domain.failure import Advice, Failure
from paymend.failures.catalogue import Catalogue, load_catalogue
from paymend.failures.codemaps import TRANSPORT, Mapped, MappedAdvice, ProviderMap, load_maps
from paymend.failures.messages import Messages, load_messages

UNMAPPED = Counter(
    "paymend_unmapped_codes_total",
    "Provider codes no map knew (classified as unrecognized_response)",
    ["provider", "raw_code"],
)


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """What a provider answered. `details` are more specific (field, code) pairs, most
    specific first, such as ("sub_code", "ACQ.BUYER_BALANCE_NOT_ENOUGH")."""

    code: str | None
    message: str | None = None
    field: str | None = None
    details: Sequence[tuple[str, str]] = ()
    advice_code: str | None = None


class Classifier:
    def __init__(
        self, catalogue: Catalogue, maps: dict[str, ProviderMap], messages: Messages
    ) -> None:
        self.catalogue = catalogue
        self.maps = maps
        self.messages = messages

    def lookup(self, provider: str, raw: RawAnswer) -> Mapped | None:
        transport = self.maps.get(TRANSPORT)
        if transport is not None and raw.code is not None and (raw.field in (None, TRANSPORT)):
            hit = transport.codes.get((TRANSPORT, raw.code))
            if hit is not None:
                return hit
        pmap = self.maps.get(provider)
        if pmap is None:
            return None
        for field, code in (*raw.details, (raw.field, raw.code)):
            if code:
                hit = pmap.find(code, field)
                if hit is not None:
                    return hit
        return None

    def advice(self, provider: str, code: str | None) -> MappedAdvice | None:
        if not code:
            return None
        for name in (provider, "card"):
            pmap = self.maps.get(name)
            if pmap is not None and code in pmap.advice:
                return pmap.advice[code]
        return None

    def classify(self, provider: str, raw: RawAnswer) -> Failure:
        hit = self.lookup(provider, raw)
        if hit is None:
            UNMAPPED.labels(provider, raw.code or "").inc()
        code = hit.entry.unified if hit else Catalogue.DEFAULT
        entry = self.catalogue[code]
        adv = self.advice(provider, raw.advice_code)
        return Failure(
            code=code,
            kind=entry.kind,
            category=entry.category,
            action=entry.action,
            provider=provider,
            raw_code=hit.entry.code if hit else raw.code,
            raw_field=hit.entry.field if hit else raw.field,
            raw_message=raw.message,
            mapped=hit is not None,
            retry_max=entry.retry.max,
            retry_base_s=entry.retry.base,
            retry_cap_s=entry.retry.cap,
            failover=entry.failover,
            counts_against_health=entry.health,
            alert_ops=entry.alert_ops or hit is None,
            visa_category=hit.entry.visa_category if hit else None,
            advice=Advice(adv.entry.advice) if adv else None,
            advice_code=adv.entry.code if adv else None,
            retry_after_s=adv.entry.retry_after if adv else None,
            source=hit.source_url if hit else None,
        )


@cache
def default_classifier() -> Classifier:
    """The classifier over the shipped data files, loaded (and validated) once."""
    catalogue = load_catalogue()
    return Classifier(catalogue, load_maps(catalogue), load_messages(catalogue))

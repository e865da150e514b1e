"""What a payment channel can take: shared by providers (which declare it) and routing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Methods, currencies and regions a channel accepts. `None` means any."""

    methods: frozenset[str]
    currencies: frozenset[str] | None = None
    regions: frozenset[str] | None = None

    def supports(self, method: str, currency: str, region: str | None) -> bool:
        if method not in self.methods:
            return False
        if self.currencies is not None and currency not in self.currencies:
            return False
        return not (self.regions is not None and region is not None and region not in self.regions)

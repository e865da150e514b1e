"""Stripe: cards through PaymentIntents, signed webhooks, balance transactions.

`StripeProvider` is the channel (client.py); `mapping` turns Stripe's answers into
ProviderResults, `webhooks` verifies and reads its notifications, `settlement` reads
balance transactions as the settlement report, `amounts` converts Money exactly.
"""

from __future__ import annotations

from paymend.providers.stripe.builder import build
from paymend.providers.stripe.client import ChannelCheck, StripeProvider
from paymend.providers.stripe.webhooks import BadSignature, UnsupportedEvent

__all__ = ["BadSignature", "ChannelCheck", "StripeProvider", "UnsupportedEvent", "build"]

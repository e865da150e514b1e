"""Ranking of channels for a payment: the primary and its fallbacks."""

"""Telling people: merchant webhooks today; customer and ops channels next."""

"""Use cases that tie the rooms together: pay, refund, query, resolve unknown outcomes."""

"""The HTTP API: merchant endpoints today, ops and help pages later."""

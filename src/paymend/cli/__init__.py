"""The `paymend` command: one module per group of commands, registered on `main`."""

from paymend.cli import access, checks, feedback, lab, pii, risk, serving, silences
from paymend.cli.base import main

__all__ = ["access", "checks", "feedback", "lab", "main", "pii", "risk", "serving", "silences"]

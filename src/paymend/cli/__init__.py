"""The `paymend` command: one module per group of commands, registered on `main`."""

from paymend.cli import access, checks, lab, risk, serving, silences
from paymend.cli.base import main

__all__ = ["access", "checks", "lab", "main", "risk", "serving", "silences"]

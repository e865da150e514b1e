"""The `paymend` command: one module per group of commands, each registered on `main`
when one of its commands is asked for (cli/base.py, `LazyGroup`)."""

from paymend.cli.base import main

__all__ = ["main"]

"""paymend: keeps online payments from failing, and handles the ones that do."""

__version__ = "0.1.0"

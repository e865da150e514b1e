"""Value types and invariants. Pure: no I/O, no framework, no clock reads."""

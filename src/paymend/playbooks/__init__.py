"""Emergency plans as data: triggers over health signals -> actions, with recovery."""

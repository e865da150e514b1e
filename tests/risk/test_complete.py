"""A payment's features are complete (risk/assess.py `complete`): every feature has a
value, the parts' own where they give one, what is not a feature is left out."""

from __future__ import annotations

from paymend.risk.assess import complete
from paymend.risk.features import DEFAULTS, FEATURES, defaults


def test_parts_fill_their_features_and_the_rest_keep_their_defaults() -> None:
    base = {"amount": 1999, "currency": "CNY"}
    later = {"card_count_10m": 3.0, "currency": "USD"}
    stray = {"score": 12, "not_a_feature": "x"}
    got = complete(base, later, stray)
    assert set(got) == set(FEATURES)
    assert got["amount"] == 1999 and got["currency"] == "USD"  # a later part wins
    assert got["card_count_10m"] == 3.0 and got["score"] == 12
    assert "not_a_feature" not in got
    untouched = set(FEATURES) - {"amount", "currency", "card_count_10m", "score"}
    assert all(got[k] == DEFAULTS[k] for k in untouched)


def test_defaults_are_a_fresh_dict_each_time() -> None:
    first = defaults()
    assert type(first) is dict and first == dict(DEFAULTS) and set(first) == set(FEATURES)
    first["score"] = 99
    del first["currency"]
    again = defaults()
    assert again is not first and again == dict(DEFAULTS)
    assert DEFAULTS["score"] != 99 and "currency" in DEFAULTS

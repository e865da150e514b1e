"""Personal data is masked before it reaches a log or a response."""

from __future__ import annotations

from paymend.domain.masking import mask_email, mask_phone, mask_token


def test_masks() -> None:
    assert mask_phone("+8613812345678") == "+86****5678"
    assert mask_email("li.wei@example.com") == "l***@example.com"
    assert mask_token("tok_1234567890abcdef") == "tok_…cdef"

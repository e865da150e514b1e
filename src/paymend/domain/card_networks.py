"""Which digit strings can be a card number: the networks' IIN ranges, their lengths, and
how cards print their digits.

Sources (union of both):

- Braintree's `credit-card-type` (github.com/braintree/credit-card-type,
  `src/lib/card-types.ts`), the table Braintree's own SDKs detect card brands with:
  Visa, Mastercard, American Express, Diners Club, Discover, JCB, UnionPay, Maestro,
  Elo, Mir, Hiper, Hipercard, Verve, with their lengths and print gaps.
- Wikipedia, "Payment card number", section "Issuer identification number (IIN)":
  the networks that table lacks (UATP, RuPay, Troy, InterPayment, Dankort, BORICA,
  UzCard, Humo, LankaPay, GPN, NAPAS, China T-Union), Visa's 13-digit numbers, and
  JCB's old 15-digit ones (1800, 2131).

A range is a pair of prefixes of one length: `("2221", "2720")` holds every number whose
first four digits lie between them.
"""

from __future__ import annotations

from collections.abc import Iterable

_R16 = (16,)
_R16_19 = (16, 17, 18, 19)
_R12_19 = (12, 13, 14, 15, 16, 17, 18, 19)

# (network, ranges, lengths)
NETWORKS: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...]], ...] = (
    ("visa", (("4", "4"),), (13, 16, 18, 19)),
    (
        "mastercard",
        (
            ("51", "55"),
            ("2221", "2229"),
            ("223", "229"),
            ("23", "26"),
            ("270", "271"),
            ("2720", "2720"),
        ),
        _R16,
    ),
    ("amex", (("34", "34"), ("37", "37")), (15,)),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39")), (14, 15, 16, 17, 18, 19)),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65"), ("622126", "622925")), _R16_19),
    ("jcb", (("2131", "2131"), ("1800", "1800"), ("3528", "3589")), (15, 16, 17, 18, 19)),
    ("unionpay", (("62", "62"), ("810", "817")), (14, 15, 16, 17, 18, 19)),
    ("china_t_union", (("31", "31"),), (19,)),
    (
        "maestro",
        (("493698", "493698"), ("500000", "508999"), ("56", "59"), ("6", "6")),
        _R12_19,
    ),
    (
        "elo",
        (
            ("401178", "401179"),
            ("431274", "431274"),
            ("438935", "438935"),
            ("451416", "451416"),
            ("457393", "457393"),
            ("457631", "457632"),
            ("504175", "504175"),
            ("506699", "506778"),
            ("509000", "509999"),
        ),
        _R16,
    ),
    ("mir", (("2200", "2204"),), _R16_19),
    ("borica", (("2205", "2205"),), _R16),
    ("verve", (("506099", "506198"), ("507865", "507964"), ("650002", "650027")), (16, 18, 19)),
    ("uatp", (("1", "1"),), (15,)),
    (
        "rupay",
        (("60", "60"), ("65", "65"), ("81", "82"), ("508", "508"), ("353", "353"), ("356", "356")),
        _R16,
    ),
    ("troy", (("9792", "9792"),), _R16),
    ("interpayment", (("636", "636"),), _R16_19),
    ("dankort", (("5019", "5019"),), _R16),
    ("uzcard", (("8600", "8600"), ("5614", "5614")), _R16),
    ("humo", (("9860", "9860"),), _R16),
    ("lankapay", (("357111", "357111"),), _R16),
    (
        "gpn",
        (("1946", "1946"), ("50", "50"), ("56", "56"), ("58", "58"), ("60", "63")),
        (16, 18, 19),
    ),
    ("napas", (("9704", "9704"),), (16, 19)),
)


def _index(
    networks: Iterable[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...]]],
) -> dict[int, list[tuple[int, int, frozenset[int]]]]:
    by_width: dict[int, list[tuple[int, int, frozenset[int]]]] = {}
    for _name, ranges, lengths in networks:
        for low, high in ranges:
            by_width.setdefault(len(low), []).append((int(low), int(high), frozenset(lengths)))
    return by_width


_BY_WIDTH = _index(NETWORKS)
MIN_LENGTH = min(n for _, _, lengths in NETWORKS for n in lengths)
MAX_LENGTH = max(n for _, _, lengths in NETWORKS for n in lengths)


def luhn_ok(digits: str) -> bool:
    """The ISO/IEC 7812 check digit (Luhn) holds for this string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def in_network_range(digits: str) -> bool:
    """Some network issues card numbers of this length starting like this."""
    n = len(digits)
    if not MIN_LENGTH <= n <= MAX_LENGTH:
        return False
    for width, ranges in _BY_WIDTH.items():
        prefix = int(digits[:width])
        for low, high, lengths in ranges:
            if low <= prefix <= high and n in lengths:
                return True
    return False


def is_card_number(digits: str) -> bool:
    """A string of ASCII digits that a card network could have issued: a known IIN
    range with a length that network uses, and a valid Luhn check digit."""
    return in_network_range(digits) and luhn_ok(digits)


def printed_like_a_card(groups: tuple[str, ...]) -> bool:
    """The digits are grouped the way cards print them: 4-4-4-4 (and 4-4-4-4-3 for 19
    digits, 4-4-4-x), or 4-6-x as American Express and Diners Club do
    (`3782 822463 10005`). Group lengths only; whether the digits are a card number is
    `is_card_number`'s question."""
    sizes = [len(g) for g in groups]
    if len(sizes) >= 4 and all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4:
        return True
    if len(sizes) == 4 and sizes[:3] == [4, 4, 4] and 5 <= sizes[3] <= 7:
        return True
    return len(sizes) == 3 and sizes[:2] == [4, 6] and 3 <= sizes[2] <= 9

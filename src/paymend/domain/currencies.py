"""ISO 4217 active currencies and their minor-unit exponents.

Source: ISO 4217 list one (maintained by SIX on behalf of ISO), as published in the
amendment current in 2026. Funds codes and precious metals (no minor unit) are left out:
a payment is never made in XAU.
"""

from __future__ import annotations

from types import MappingProxyType

_EXPONENTS: dict[str, int] = {
    # exponent 0
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    # exponent 3
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    # exponent 4
    "CLF": 4,
    "UYW": 4,
    # exponent 2: every other active currency
    **dict.fromkeys(
        """AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP
        BYN BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
        GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT
        LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
        NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP
        SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UZS VED VES
        WST XCD XCG YER ZAR ZMW ZWG""".split(),
        2,
    ),
}

EXPONENTS: MappingProxyType[str, int] = MappingProxyType(_EXPONENTS)
"""Currency code -> number of digits after the decimal point."""


def exponent(code: str) -> int:
    """The minor-unit exponent of an ISO 4217 code; KeyError if it is not a known currency."""
    return EXPONENTS[code]

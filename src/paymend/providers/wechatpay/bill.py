"""WeChat Pay's trade bill (交易账单), read into SettlementLines for reconciliation.

`GET /v3/bill/tradebill?bill_date=yyyy-MM-dd&bill_type=ALL` answers `{"hash_type":
"SHA1", "hash_value", "download_url"}`; the download is a CSV (UTF-8): a header line, one
line per trade and per refund, every value prefixed with a backtick (so spreadsheets
keep long numbers as text), then a totals header (`总交易单数,…`) and its line. A
`SUCCESS` line gives the charge: `微信订单号` (transaction_id, the attempt's provider
reference), `商户订单号` (out_trade_no: the attempt's id) and `订单金额` in yuan; a
`REFUND` line of the same transaction gives the money sent back as `退款金额`.

Source: https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_4_6.shtml (申请交易账单)
and 下载账单 (chapter3_4_8.shtml), with the column list of its example file.
"""

from __future__ import annotations

import csv
import hashlib
import io

from paymend.domain.money import Money
from paymend.providers.base import SettlementLine

COLUMNS = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
).split(",")
TRANSACTION_ID, OUT_TRADE_NO, STATE = "微信订单号", "商户订单号", "交易状态"
AMOUNT, REFUNDED = "订单金额", "退款金额"
TOTALS = "总交易单数"


def sha1_matches(content: bytes, hash_value: str) -> bool:
    return hashlib.sha1(content, usedforsecurity=False).hexdigest() == hash_value.lower()


def _cell(value: str | None) -> str:
    return (value or "").strip().removeprefix("`").strip()


def parse(text: str) -> list[SettlementLine]:
    """Every paid transaction of one bill, with what was refunded of it."""
    lines = text.lstrip("\ufeff").splitlines()
    cut = next((i for i, line in enumerate(lines) if line.startswith(TOTALS)), len(lines))
    reader = csv.DictReader(io.StringIO("\n".join(lines[:cut])))
    charges: dict[str, tuple[str, Money]] = {}
    refunded: dict[str, int] = {}
    for row in reader:
        cells = {(k or "").strip(): _cell(v) for k, v in row.items()}
        transaction_id, state = cells.get(TRANSACTION_ID, ""), cells.get(STATE, "")
        if not transaction_id:
            continue
        if state == "SUCCESS":
            charges[transaction_id] = (
                cells.get(OUT_TRADE_NO, ""),
                Money.parse(cells[AMOUNT], "CNY"),
            )
        elif state == "REFUND":
            back = Money.parse(cells.get(REFUNDED) or "0", "CNY").minor
            refunded[transaction_id] = refunded.get(transaction_id, 0) + back
    return [
        SettlementLine(transaction_id, number, "", amount, refunded.get(transaction_id, 0))
        for transaction_id, (number, amount) in charges.items()
    ]


def write(rows: list[tuple[str, str, str, Money, int]], mchid: str, appid: str, day: str) -> str:
    """A bill as WeChat Pay publishes it, from (transaction_id, out_trade_no, state,
    amount, refunded fen) rows: what the simulator's face serves."""
    out = io.StringIO()
    out.write(",".join(COLUMNS) + "\n")
    fees = 0
    total = refund_total = 0
    for transaction_id, number, state, amount, refund in rows:
        values = dict.fromkeys(COLUMNS, "")
        values |= {
            "交易时间": f"{day} 12:00:00",
            "公众账号ID": appid,
            "商户号": mchid,
            "特约商户号": "0",
            TRANSACTION_ID: transaction_id,
            OUT_TRADE_NO: number,
            "交易类型": "NATIVE",
            STATE: state,
            "付款银行": "OTHERS",
            "货币种类": "CNY",
            "应结订单金额": amount.format(),
            "代金券金额": "0.00",
            REFUNDED: Money(refund, "CNY").format() if state == "REFUND" else "0.00",
            "充值券退款金额": "0.00",
            "商品名称": "paymend order",
            "手续费": "0.00",
            "费率": "0.60%",
            AMOUNT: amount.format(),
            "申请退款金额": Money(refund, "CNY").format() if state == "REFUND" else "0.00",
        }
        if state == "SUCCESS":
            total += amount.minor
        else:
            refund_total += refund
        out.write(",".join(f"`{values[c]}" for c in COLUMNS) + "\n")
    out.write(
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
    )
    sums = [Money(total, "CNY"), Money(refund_total, "CNY"), Money(0, "CNY")]
    amounts = [sums[0].format(), sums[1].format(), "0.00", Money(fees, "CNY").format()]
    amounts += [sums[0].format(), sums[1].format()]
    out.write(",".join(f"`{v}" for v in [str(len(rows)), *amounts]) + "\n")
    return out.getvalue()

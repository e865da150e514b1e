"""Alipay's daily trade bill ("业务明细"), read into SettlementLines for reconciliation.

`alipay.data.dataservice.bill.downloadurl.query` (https://opendocs.alipay.com/open/
02e7gr, `bill_type=trade`, `bill_date=yyyy-MM-dd`) answers a `bill_download_url`, valid
30 seconds, of a zip holding GBK-encoded CSV files: `<pid>_<date>_业务明细.csv` (one row
per trade and per refund) and `…_业务明细(汇总).csv` (totals, not read). Lines starting
with `#` are the file's titles and footers; the first other line names the columns;
values may carry trailing tabs (so spreadsheets keep long numbers as text).

A `交易` (trade) row gives the charge: `支付宝交易号` (Alipay's trade_no, the attempt's
provider reference), `商户订单号` (out_trade_no: the attempt's idempotency key) and
`订单金额（元）`. A `退款` (refund) row of the same trade gives the money sent back as
the negative `商家实收（元）`, with its `退款批次号/请求号` (our refund's out_request_no).
"""

from __future__ import annotations

import csv
import io
import zipfile

from paymend.domain.money import Money
from paymend.providers.alipay import mapping
from paymend.providers.base import SettlementLine

TRADE_NO = "支付宝交易号"
OUT_TRADE_NO = "商户订单号"
KIND = "业务类型"
AMOUNT = "订单金额（元）"
RECEIVED = "商家实收（元）"
REFUND_NO = "退款批次号/请求号"
TRADE, REFUND = "交易", "退款"
DETAIL = "业务明细.csv"
MAX_FILE_BYTES = 256 * 1024 * 1024


def files(content: bytes) -> list[str]:
    """The detail CSV texts of a downloaded bill: a zip, or one CSV."""
    if not content.startswith(b"PK"):
        return [_decode(content)]
    texts = []
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in archive.infolist():
            name = _member_name(info)
            if name.endswith(DETAIL) and "汇总" not in name:
                if info.file_size > MAX_FILE_BYTES:
                    raise ValueError(f"{name}: larger than {MAX_FILE_BYTES} bytes")
                texts.append(_decode(archive.read(info)))
    return texts


def _member_name(info: zipfile.ZipInfo) -> str:
    """Alipay's zips name members in GBK without the UTF-8 flag; zipfile reads them as
    cp437: decode them back."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def parse(text: str) -> list[SettlementLine]:
    """Every trade of one detail CSV, with what was refunded of it."""
    rows = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not rows:
        return []
    reader = csv.DictReader(io.StringIO("\n".join(rows)))
    trades: dict[str, tuple[str, Money]] = {}
    refunded: dict[str, int] = {}
    for row in reader:
        cells = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        trade_no, kind = cells.get(TRADE_NO, ""), cells.get(KIND, "")
        if not trade_no:
            continue
        if kind == TRADE:
            trades[trade_no] = (cells.get(OUT_TRADE_NO, ""), mapping.fen(cells[AMOUNT]))
        elif kind == REFUND:
            back = abs(mapping.fen(cells.get(RECEIVED) or cells[AMOUNT]).minor)
            refunded[trade_no] = refunded.get(trade_no, 0) + back
    return [
        SettlementLine(trade_no, out_trade_no, "", amount, refunded.get(trade_no, 0))
        for trade_no, (out_trade_no, amount) in trades.items()
    ]


def write(lines: list[tuple[str, str, str, str, str, str]], pid: str, day: str) -> bytes:
    """A bill zip as Alipay publishes it, from (trade_no, out_trade_no, kind, amount,
    received, refund request no) rows: what the simulator's face serves."""
    header = [TRADE_NO, OUT_TRADE_NO, KIND, "商品名称", "创建时间", "完成时间", AMOUNT]
    header += [RECEIVED, REFUND_NO, "备注"]
    out = io.StringIO()
    out.write("#支付宝业务明细查询\n")
    out.write(f"#账号：[{pid}]\n")
    out.write(
        "#-----------------------------------------业务明细列表----------------------------------------\n"
    )
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for trade_no, out_trade_no, kind, amount, received, refund_no in lines:
        ids = [f"{trade_no}\t", f"{out_trade_no}\t"]
        writer.writerow([*ids, kind, "paymend order", "", "", amount, received, refund_no, ""])
    out.write(
        "#-----------------------------------------业务明细列表结束------------------------------------\n"
    )
    name = f"{pid}_{day.replace('-', '')}_{DETAIL}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, out.getvalue().encode("gbk"))
    return buffer.getvalue()

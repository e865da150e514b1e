"""The pain-point report for the team: what customers said on the status page, in the
help centre and through the merchant's checkout, grouped by failure code, channel,
method, bank and step (engine/feedback.py, as `paymend feedback report`). Its texts are
masked as stored; support and above read it. Its words are its own table here, so the
page stays one file beside the console's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from paymend.console.web import PREFIX, gate, locale_of, render, runtime_of
from paymend.domain.roles import Role
from paymend.engine import feedback

router = APIRouter(prefix=PREFIX, include_in_schema=False)

WORDS = {
    "en": {
        "title": "What customers say",
        "period": "The last {days} days: {total} (the {days} days before: {before})",
        "by.failure_code": "By failure code",
        "by.channel": "By channel",
        "by.method": "By method",
        "by.bank": "By bank",
        "by.step": "By step",
        "value": "Value",
        "count": "Count",
        "trend": "Change",
        "unhappy": "Unhappy",
        "reasons": "Reasons",
        "examples": "Latest words",
        "none": "No feedback yet.",
    },
    "zh-CN": {
        "title": "顾客反馈",
        "period": "最近 {days} 天：{total} 条（之前 {days} 天：{before} 条）",
        "by.failure_code": "按失败原因",
        "by.channel": "按通道",
        "by.method": "按支付方式",
        "by.bank": "按银行",
        "by.step": "按环节",
        "value": "取值",
        "count": "数量",
        "trend": "变化",
        "unhappy": "不满意",
        "reasons": "原因",
        "examples": "最新留言",
        "none": "暂无反馈。",
    },
}


@router.get("/feedback")
async def pain_points(request: Request, days: Annotated[int, Query(ge=1, le=366)] = 7) -> Response:
    checked = await gate(request, Role.SUPPORT)
    if checked.refusal:
        return checked.refusal
    runtime = runtime_of(request)
    found = await feedback.report(runtime.store, runtime.clock.now(), days)
    words = WORDS.get(locale_of(request), WORDS["en"])
    return render(request, "feedback.html", checked.session, report=found, days=days, w=words)

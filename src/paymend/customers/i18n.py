"""The customers' pages' own words in English and 简体中文 (what a payment's failure
means comes from failures/messages, in the same locale). A small table as the console's
(console/i18n.py), whose negotiation it shares: the link's `?lang=` first, then the
browser's Accept-Language."""

from __future__ import annotations

from paymend.console import i18n as console_i18n

LOCALES = console_i18n.LOCALES
LOCALE_NAMES = console_i18n.LOCALE_NAMES

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your payment",
        "order": "Order",
        "amount": "Amount",
        "state.succeeded": "Paid",
        "state.processing": "Being confirmed",
        "state.failed": "Not paid",
        "state.other": "Status",
        "refreshing": "This page updates itself while we confirm.",
        "next": "What you can do",
        "pay_again": "Pay again with another method",
        "help_article": "Read more about this",
        "support": "Contact support",
        "support_at": "Contact {contact}",
        "feedback.title": "How was this?",
        "feedback.rating": "Your rating",
        "feedback.rating_n": "{n} of 5",
        "feedback.reasons": "What went wrong? (optional)",
        "feedback.text": "Anything else? Never write card numbers or codes here.",
        "feedback.send": "Send",
        "feedback.thanks": "Thank you: we read every message.",
        "feedback.refused": "That could not be sent: {why}",
        "reason.unclear_message": "The message was unclear",
        "reason.failed_again": "It failed again",
        "reason.charged_but_failed": "I was charged but it says failed",
        "reason.too_slow": "It took too long",
        "reason.method_missing": "My payment method is missing",
        "reason.verification_trouble": "Trouble with the bank's verification",
        "reason.other": "Something else",
        "link.malformed": "This link does not work. Check that you copied all of it, or "
        "open it again from the message we sent you.",
        "link.expired": "This link has expired. Open your order from the shop's website, "
        "or ask the shop for a new link.",
        "link.off": "Payment links are not available on this service.",
        "link.title": "We cannot show this payment",
        "help.title": "Help centre",
        "help.search": "Search the help centre",
        "help.search_button": "Search",
        "help.results": "Articles for “{q}”",
        "help.no_results": "No article matches. Try other words, or read the FAQ.",
        "help.faq": "Frequently asked questions",
        "help.all": "All help topics",
        "help.not_found": "There is no help article here.",
        "help.more": "From the shop",
        "help.did_it_help": "Did this help?",
        "help.yes": "Yes",
        "help.no": "No",
        "group.another_card": "Use another card or method",
        "group.top_up": "Top up or pay a smaller amount",
        "group.contact_bank": "Contact your bank",
        "group.verify": "Check your details or verify",
        "group.wait": "Wait, then try again",
    },
    "zh-CN": {
        "title": "您的支付",
        "order": "订单",
        "amount": "金额",
        "state.succeeded": "已支付",
        "state.processing": "确认中",
        "state.failed": "未支付",
        "state.other": "状态",
        "refreshing": "确认期间本页会自动更新。",
        "next": "您可以这样做",
        "pay_again": "换一种方式重新支付",
        "help_article": "了解详情",
        "support": "联系客服",
        "support_at": "联系 {contact}",
        "feedback.title": "这次体验如何？",
        "feedback.rating": "您的评分",
        "feedback.rating_n": "{n} 分（满分 5 分）",
        "feedback.reasons": "遇到了什么问题？（可选）",
        "feedback.text": "还有其他想说的吗？请勿在此填写卡号或验证码。",
        "feedback.send": "提交",
        "feedback.thanks": "感谢您的反馈，我们会认真阅读每一条。",
        "feedback.refused": "提交失败：{why}",
        "reason.unclear_message": "提示看不懂",
        "reason.failed_again": "再次支付仍失败",
        "reason.charged_but_failed": "已扣款但显示失败",
        "reason.too_slow": "等待时间太长",
        "reason.method_missing": "没有我想用的支付方式",
        "reason.verification_trouble": "银行验证遇到问题",
        "reason.other": "其他",
        "link.malformed": "此链接无效。请确认链接已完整复制，或从我们发给您的消息中重新打开。",
        "link.expired": "此链接已过期。请在商家网站查看订单，或向商家索取新的链接。",
        "link.off": "本服务未开启支付状态链接。",
        "link.title": "无法显示此支付",
        "help.title": "帮助中心",
        "help.search": "搜索帮助中心",
        "help.search_button": "搜索",
        "help.results": "“{q}”的相关文章",
        "help.no_results": "没有找到相关文章。请换个说法，或查看常见问题。",
        "help.faq": "常见问题",
        "help.all": "全部帮助主题",
        "help.not_found": "没有这篇帮助文章。",
        "help.more": "商家补充说明",
        "help.did_it_help": "这篇文章对您有帮助吗？",
        "help.yes": "有帮助",
        "help.no": "没有帮助",
        "group.another_card": "换一张卡或换一种支付方式",
        "group.top_up": "充值或减少支付金额",
        "group.contact_bank": "联系您的银行",
        "group.verify": "核对信息或完成验证",
        "group.wait": "稍候再试",
    },
}


def negotiate(lang: str | None, accept_language: str | None) -> str:
    """The reader's locale: the link's `lang` if we have it, else the browser's."""
    return console_i18n.negotiate(lang, accept_language)


def translate(locale: str, key: str, /, **values: object) -> str:
    text = MESSAGES.get(locale, MESSAGES["en"]).get(key) or MESSAGES["en"][key]
    return text.format(**values) if values else text

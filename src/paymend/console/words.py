"""More of the console's words (i18n.py merges them into its table): the emergency
controls, the customer-service actions on a payment, incidents' payments and the log-in
limits. Every key is in both languages with the same placeholders (tests/console)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "control.new": "Emergency control",
        "control.new_help": "Pause a channel, bank or region, force a channel first, or hold "
        "a bank's or region's payments above an amount for review. It lifts itself at its "
        "end; the next step shows how many payments of the last hour it would have touched.",
        "control.kind_pause": "Pause",
        "control.kind_force_route": "Force a route",
        "control.kind_hold": "Hold large payments",
        "control.amount_above": "Above (minor units)",
        "control.hold_only": "holds only",
        "control.currency": "Currency",
        "control.ends_in": "Ends after",
        "control.ends_at": "or ends at (UTC)",
        "control.minutes": "{n} minutes",
        "control.hours": "{n} h",
        "control.preview": "Preview",
        "control.preview_title": "Check the control before setting it",
        "control.touched_pause": "In the last hour it would have stopped {n} payments.",
        "control.touched_force_route": "In the last hour {n} payments went elsewhere "
        "that it would have sent to this channel first.",
        "control.touched_hold": "In the last hour it would have held {n} payments for review.",
        "control.confirm": "I confirm this control and its end time",
        "control.set_pause": "Pause now",
        "control.set_force_route": "Force the route now",
        "control.set_hold": "Hold now",
        "control.cancel": "Cancel",
        "control.done_pause": "Paused {target}.",
        "control.done_force_route": "{target} now goes first.",
        "control.done_hold": "Large payments of {target} are held.",
        "control.ends_required": "Choose when the control ends.",
        "control.ends_invalid": "The end time must be later than now and at most {longest} "
        "days away (YYYY-MM-DD HH:MM, UTC).",
    },
    "zh-CN": {
        "control.new": "应急管控",
        "control.new_help": "暂停通道、银行或地区，强制优先某通道，或将某银行、地区超过金额的支付"
        "转人工审核。到结束时间自动解除；下一步会显示过去一小时内它会影响多少笔支付。",
        "control.kind_pause": "暂停",
        "control.kind_force_route": "强制路由",
        "control.kind_hold": "大额支付待审",
        "control.amount_above": "超过（最小货币单位）",
        "control.hold_only": "仅用于待审",
        "control.currency": "币种",
        "control.ends_in": "持续时间",
        "control.ends_at": "或结束于（UTC）",
        "control.minutes": "{n} 分钟",
        "control.hours": "{n} 小时",
        "control.preview": "预览",
        "control.preview_title": "设置前请核对管控",
        "control.touched_pause": "过去一小时内它会拦下 {n} 笔支付。",
        "control.touched_force_route": "过去一小时内有 {n} 笔支付走了其他通道，"
        "它会让这些支付先走此通道。",
        "control.touched_hold": "过去一小时内它会将 {n} 笔支付转人工审核。",
        "control.confirm": "我确认此管控及其结束时间",
        "control.set_pause": "立即暂停",
        "control.set_force_route": "立即强制路由",
        "control.set_hold": "立即待审",
        "control.cancel": "取消",
        "control.done_pause": "已暂停 {target}。",
        "control.done_force_route": "{target} 现在优先。",
        "control.done_hold": "{target} 的大额支付已转待审。",
        "control.ends_required": "请选择管控的结束时间。",
        "control.ends_invalid": "结束时间须晚于现在，且不超过 {longest} 天"
        "（YYYY-MM-DD HH:MM，UTC）。",
    },
}

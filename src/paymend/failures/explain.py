"""Explaining a provider code in plain words: what `paymend explain-code` prints.

The JSON field names and action names are a public interface; keep them.
"""

from __future__ import annotations

from typing import Any

from paymend.failures.classify import Classifier, RawAnswer


def explain(
    classifier: Classifier, provider: str, raw_code: str, locale: str = "en"
) -> dict[str, Any]:
    advice = (
        None
        if classifier.lookup(provider, RawAnswer(raw_code))
        else (classifier.advice(provider, raw_code))
    )
    if advice is not None:
        entry = advice.entry
        return {
            "provider": provider,
            "raw_code": raw_code,
            "code": None,
            "kind": None,
            "category": None,
            "action": None,
            "retry_same_channel": entry.advice == "retry_later",
            "advice": entry.advice,
            "retry_after_s": entry.retry_after,
            "description": entry.description,
            "customer_message": None,
            "source": advice.source_url,
        }
    failure = classifier.classify(provider, RawAnswer(raw_code))
    message = classifier.messages.render(failure.code, locale, support_contact=None)
    return {
        "provider": provider,
        "raw_code": raw_code,
        "code": failure.code,
        "kind": failure.kind.value,
        "category": failure.category,
        "action": failure.action.value,
        "retry_same_channel": failure.retry_same_channel,
        "failover": failure.failover,
        "counts_against_health": failure.counts_against_health,
        "mapped": failure.mapped,
        "visa_category": failure.visa_category,
        "description": classifier.catalogue[failure.code].description,
        "customer_message": {
            "title": message.title,
            "detail": message.detail,
            "suggestions": list(message.suggestions),
        },
        "source": failure.source,
    }


def as_text(info: dict[str, Any]) -> str:
    """The explanation as a person reads it in a terminal."""
    head = f"{info['provider']} {info['raw_code']}"
    if info["code"] is None:
        lines = [
            f"{head}: advice '{info['advice']}'",
            f"  {info['description']}",
        ]
        if info.get("retry_after_s"):
            lines.append(f"  next try no sooner than {info['retry_after_s']:g}s")
        lines.append(f"  source: {info['source']}")
        return "\n".join(lines)
    msg = info["customer_message"]
    lines = [
        f"{head} -> {info['code']} ({info['kind']}, {info['category']})"
        + ("" if info["mapped"] else "  [not in any map: safe default]"),
        f"  what it means: {info['description']}",
        f"  what paymend does: {info['action']}"
        + (", may retry on the same channel" if info["retry_same_channel"] else "")
        + (", may fail over" if info["failover"] else ""),
        "  counts against the channel's health: "
        + ("yes" if info["counts_against_health"] else "no"),
        f"  the customer reads: {msg['title']} — {msg['detail']}",
        *[f"    - {s}" for s in msg["suggestions"]],
    ]
    if info["source"]:
        lines.append(f"  source: {info['source']}")
    return "\n".join(lines)

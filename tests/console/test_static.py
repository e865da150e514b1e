"""The console's words exist in every language, and the vendored libraries are the
files their README pins (no CDN: they are served from the package)."""

from __future__ import annotations

import hashlib
import re
import string

from paymend.console import i18n
from paymend.console.router import FILES, STATIC


def test_every_word_exists_in_every_locale_with_the_same_placeholders() -> None:
    english = i18n.MESSAGES[i18n.DEFAULT]
    for locale in i18n.LOCALES:
        words = i18n.MESSAGES[locale]
        assert set(words) == set(english), locale
        for key, text in words.items():
            names = {f[1] for f in string.Formatter().parse(text) if f[1]}
            wanted = {f[1] for f in string.Formatter().parse(english[key]) if f[1]}
            assert names == wanted, (locale, key)


def test_every_word_the_templates_use_exists() -> None:
    used = set()
    for template in (STATIC.parent / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(["']([\w.]+)["']""", template.read_text()))
    assert used, "the templates name no words?"
    known = set(i18n.MESSAGES[i18n.DEFAULT])
    prefixes = {u for u in used if u.endswith((".", "_"))}  # t("badge." + name)
    assert used - prefixes - known == set()
    for name in ("healthy", "degraded", "failing", "idle"):
        assert f"badge.{name}" in known
    for state in ("closed", "open", "half_open"):  # health/breaker.py BreakerState
        assert f"circuit.{state}" in known


def test_the_vendored_files_are_the_pinned_ones() -> None:
    readme = (STATIC / "vendor" / "README.md").read_text()
    pinned = dict(
        (path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    assert set(pinned) == {"htmx/htmx.min.js", "uplot/uPlot.iife.min.js", "uplot/uPlot.min.css"}
    for path, digest in pinned.items():
        data = (STATIC / "vendor" / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, path
        assert f"vendor/{path}" in FILES
    assert (STATIC / "vendor" / "htmx" / "LICENSE").exists()
    assert (STATIC / "vendor" / "uplot" / "LICENSE").exists()
    assert "htmx.org@2.0.11" in readme and "uplot@1.6.32" in readme

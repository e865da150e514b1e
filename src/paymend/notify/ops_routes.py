"""Where ops are paged, as data: the on-call routes and the levels they escalate through.

The file (`ops_alerts.routes` in paymend.yaml names it) lists routes, each an apprise URL
(WeCom, DingTalk or Feishu group bots, Slack, email over SMTP, a generic JSON endpoint,
SMS through Aliyun: paymend's own `aliyunsms://` plugin, notify/aliyun_sms.py),
and levels: who is paged first, how often they are reminded while nobody acknowledges
the incident, and after how long the next level is paged too. Secrets stay out of the
file: a URL names them as `${ENV_NAME}` and they are read from the environment when
paymend starts. A mistake, or a secret not set, refuses to start and names the line.

apprise URL forms: https://github.com/caronc/apprise/wiki (wecombot://, dingtalk://,
feishu://, slack://, mailto://, json://).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from paymend.datafiles import At, DataFileError, line_of, parse_duration, read_yaml, validate_model
from paymend.domain.incident import IncidentSeverity

Seconds = Annotated[float, BeforeValidator(parse_duration)]
RouteName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
_SECRET = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
_SCHEMES = (
    "wecombot",
    "dingtalk",
    "feishu",
    "slack",
    "mailto",
    "mailtos",
    "json",
    "jsons",
    "aliyunsms",
)


class Level(BaseModel):
    """One step of escalation: its routes are paged together."""

    model_config = ConfigDict(extra="forbid")

    routes: list[RouteName] = Field(min_length=1)
    remind_every: Seconds | None = 600.0  # while unacknowledged; None: no reminders
    escalate_after: Seconds | None = None  # unacknowledged this long: page the next level


class OpsRoutes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, ge=1, le=1)
    routes: dict[RouteName, str] = Field(min_length=1)
    levels: list[Level] = Field(min_length=1)
    # which incidents page at all; the others stay in the API and the metric
    severities: list[IncidentSeverity] = Field(default_factory=lambda: list(IncidentSeverity))
    # the link every message carries to its incident
    incident_url: str = "http://127.0.0.1:8000/v1/ops/incidents/{incident_id}"
    # waits after a route failed to take a message; after the last, that message failed
    retry: list[Seconds] = Field(default_factory=lambda: [10.0, 60.0, 300.0], max_length=10)

    @model_validator(mode="after")
    def _consistent(self) -> OpsRoutes:
        for name, url in self.routes.items():
            scheme = url.split("://", 1)[0] if "://" in url else ""
            if scheme not in _SCHEMES:
                raise At(["routes", name], f"an apprise URL, one of {', '.join(_SCHEMES)}://")
        for i, level in enumerate(self.levels):
            for j, route in enumerate(level.routes):
                if route not in self.routes:
                    raise At(["levels", i, "routes", j], f"no route named '{route}'")
            last = i == len(self.levels) - 1
            if last and level.escalate_after is not None:
                raise At(["levels", i, "escalate_after"], "the last level has no next to page")
            if level.remind_every == 0:
                raise At(["levels", i, "remind_every"], "leave it out for no reminders")
        if "{incident_id}" not in self.incident_url:
            raise At(["incident_url"], "a URL with {incident_id} in it")
        return self

    def level(self, n: int) -> Level:
        return self.levels[min(n, len(self.levels) - 1)]

    def routes_up_to(self, n: int) -> list[str]:
        """The routes of levels 0..n, each once: who hears how it ended."""
        return list(dict.fromkeys(r for lv in self.levels[: n + 1] for r in lv.routes))


@dataclass(frozen=True, slots=True)
class Routes:
    """The validated file, with each route's URL its secrets filled in."""

    spec: OpsRoutes
    urls: Mapping[str, str]


def load_routes(path: str | Path, environ: Mapping[str, str] | None = None) -> Routes:
    """Read and validate the routes file; DataFileError names the line of a mistake or of
    a `${SECRET}` the environment does not hold."""
    data, node = read_yaml(path)
    spec = validate_model(OpsRoutes, data, node, str(path))
    env = os.environ if environ is None else environ
    urls: dict[str, str] = {}
    for name, url in spec.routes.items():
        missing = [m for m in _SECRET.findall(url) if not env.get(m)]
        if url.startswith("aliyunsms://"):
            from paymend.notify import aliyun_sms  # registers the scheme with apprise

            missing += [key for key in aliyun_sms.ACCESS_KEYS if not env.get(key)]
        if missing:
            line = line_of(node, ["routes", name])
            raise DataFileError(str(path), line, f"routes.{name}: {missing[0]} is not set")
        urls[name] = fill_secrets(url, env)
    return Routes(spec, urls)


def fill_secrets(url: str, env: Mapping[str, str]) -> str:
    """`url` with each `${NAME}` replaced by its value. In the URL's login (before the
    `@` of its host: `mailtos://alerts:${SMTP_PASSWORD}@smtp.example.com`) a value is
    percent-encoded, so that a password holding `@`, `:` or `/` stays a password;
    elsewhere it goes in as it is (a Slack route's tokens are `T…/B…/…`, slashes meant)."""
    scheme, sep, rest = url.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    login_end = len(scheme) + len(sep) + authority.rfind("@") if "@" in authority else -1

    def value(m: re.Match[str]) -> str:
        raw = env[m.group(1)]
        return quote(raw, safe="") if m.start() < login_end else raw

    return _SECRET.sub(value, url)


def masked_url(url: str) -> str:
    """A route's URL fit for a log line: scheme and host only."""
    scheme, _, rest = url.partition("://")
    host = rest.split("?", 1)[0].split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…"


def with_header(url: str, name: str, value: str) -> str:
    """A JSON endpoint's URL that also sends the HTTP header `name` (apprise's `+name=`
    query argument, https://github.com/caronc/apprise/wiki/Notify_Custom_JSON)."""
    if not url.startswith(("json://", "jsons://")):
        return url
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}+{name}={value}"

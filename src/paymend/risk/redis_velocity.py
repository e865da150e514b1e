"""The velocity book in Redis, shared by every process: one sorted set per subject of
its payments (scored by time, member `payment|amount|currency|card`) and one of its
failed payments (member `payment|fraud`). Sets older than the longest window are
trimmed on write and expire on their own; one pipeline reads all of a payment's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from paymend.risk.features import Subjects
from paymend.risk.velocity import LONGEST_S, Seen

# Add ARGV[1] at score ARGV[2] to each set of KEYS, drop what scores ARGV[3] or less,
# and let each set expire ARGV[4] seconds after its last write: one command however
# many subjects a payment has, where three a subject cost redis-py a command's packing
# and reply each (a payment's writes were most of the velocity book's client time)
ADD = """
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[3])
  redis.call('EXPIRE', key, ARGV[4])
end
return #KEYS
"""


class RedisVelocity:
    def __init__(self, client: redis.Redis, prefix: str = "paymend:risk") -> None:
        self.client = client
        self.prefix = prefix
        self._add_script = client.register_script(ADD)

    @classmethod
    def from_url(cls, url: str) -> RedisVelocity:
        # a payment falls back to the database's counters when Redis cannot answer, so
        # it must not wait long for it: redis-py's default retries back off for seconds.
        # RESP3 asked for by name: a score arrives as a float. Left to its default,
        # redis-py 8 speaks RESP3 but answers in RESP2's shapes, writing every score back
        # to text and reading it again, a quarter of the read of a busy subject's set
        # (bench/redis_velocity.py)
        return cls(
            redis.Redis.from_url(
                url,
                socket_connect_timeout=0.5,
                socket_timeout=0.5,
                retry=Retry(NoBackoff(), 1),
                protocol=3,
            )
        )

    def _key(self, kind: str, subject: str, value: str) -> str:
        return f"{self.prefix}:{kind}:{subject}:{value}"

    def history(self, who: Subjects, now: datetime) -> Mapping[str, Iterable[Seen]] | None:
        t = now.timestamp()
        pairs = who.items()
        pipe = self.client.pipeline(transaction=False)
        for subject, value in pairs:
            pipe.zrangebyscore(
                self._key("pay", subject, value), t - LONGEST_S, "+inf", withscores=True
            )
            pipe.zrangebyscore(self._key("fail", subject, value), t - LONGEST_S, "+inf")
        try:
            answers = pipe.execute()
        except redis.RedisError:
            return None
        out: dict[str, list[Seen]] = {}
        for i, (subject, _) in enumerate(pairs):
            paid, failed = answers[2 * i], answers[2 * i + 1]
            fails: dict[str, bool] = {}
            for member in failed:
                pid, _, fraud = member.decode().partition("|")
                fails[pid] = fraud == "1"
            rows = []
            for member, at in paid:
                pid, amount, currency, card = member.decode().split("|", 3)
                rows.append(
                    Seen(
                        pid, at, float(amount), currency, card, pid in fails, fails.get(pid, False)
                    )
                )
            out[subject] = rows
        return out

    def seen(
        self, payment_id: str, who: Subjects, amount_major: float, currency: str, now: datetime
    ) -> bool:
        return self._add("pay", who, f"{payment_id}|{amount_major}|{currency}|{who.card}", now)

    def settled(self, payment_id: str, who: Subjects, fraud: bool, now: datetime) -> bool:
        return self._add("fail", who, f"{payment_id}|{int(fraud)}", now)

    def _add(self, kind: str, who: Subjects, member: str, now: datetime) -> bool:
        """Add `member` at `now` to each subject's `kind` set, dropping what is older than
        the longest window, in one command (ADD). False: Redis could not take it."""
        t = now.timestamp()
        keys = [self._key(kind, subject, value) for subject, value in who.items()]
        if not keys:
            return True
        try:
            self._add_script(keys=keys, args=[member, t, t - LONGEST_S, LONGEST_S + 60])
        except redis.RedisError:
            return False
        return True

"""Login events as Kafka records: realistic, reproducible from a seed, and cheap to make.

Every event is drawn from a population built once with Faker (see
:mod:`producer.provider`) using a single seeded :class:`random.Random`, so ``--seed``
fixes the whole event sequence. Ordinary logins fail at ``failure_rate``; now and then a
credential-stuffing burst sends many failed logins from one address against many accounts.
"""

from __future__ import annotations

import bisect
import functools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, NamedTuple

import orjson

from contract.events import SCHEMA_VERSION
from producer.provider import (
    ATTACK_USER_AGENTS,
    AUTH_METHODS,
    COUNTRIES,
    FAILURE_REASONS,
    SimulatedUser,
    build_faker,
    build_population,
)
from producer.rhythm import backfill_timestamps

DEFAULT_USERS = 2_000
DEFAULT_FAILURE_RATE = 0.03
# Chance that any given event starts a credential-stuffing burst.
DEFAULT_ATTACK_PROBABILITY = 0.0002
ATTACK_SIZE = (20, 150)
ATTACK_SPACING_MS = (50, 1_500)
# Share of attack attempts that hit an account that really exists, and that get in.
ATTACK_KNOWN_USER_SHARE = 0.6
ATTACK_SUCCESS_RATE = 0.01
# Share of a user's logins from an address outside their usual ones (travel, mobile data).
ROAMING_SHARE = 0.08


class LoginRecord(NamedTuple):
    """One event ready for Kafka: key (``user_id``), JSON value and the event time.

    A NamedTuple rather than a dataclass: it is built for every event and costs less.
    """

    key: bytes
    value: bytes
    event_time_ms: int


@dataclass
class Burst:
    """One credential-stuffing burst as generated: the ground truth a detector is measured
    against. ``first_ms`` and ``last_ms`` are the event times of its first and last event
    as stamped (in a live run the clock at the producer's pace, not the planned spacing)."""

    address: str
    first_ms: int = 0
    last_ms: int = 0
    attempts: int = 0
    failed: int = 0
    accounts: set[str] = field(default_factory=set)

    def add(self, epoch_ms: int, user_id: str, success: bool) -> None:
        if not self.attempts:
            self.first_ms = epoch_ms
        self.last_ms = epoch_ms
        self.attempts += 1
        self.failed += not success
        self.accounts.add(user_id)

    def as_json(self) -> dict[str, Any]:
        """The record of ``--bursts-file``: one JSON object per line."""
        return {
            "address": self.address,
            "first_event_time": format_timestamp(self.first_ms),
            "last_event_time": format_timestamp(self.last_ms),
            "attempts": self.attempts,
            "failed": self.failed,
            "accounts": len(self.accounts),
        }


DAY_MS = 86_400_000


@functools.lru_cache(maxsize=4)
def _day_prefix(day: int) -> str:
    return time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))


def format_timestamp(epoch_ms: int) -> str:
    """ISO-8601 UTC with millisecond precision and ``Z``, e.g. ``2024-02-29T23:59:59.999Z``.

    The date part is cached per day; this runs once per event and strftime alone would
    cost a fifth of the event budget.
    """
    day, in_day = divmod(epoch_ms, DAY_MS)
    seconds, millis = divmod(in_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_prefix(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def uuid4_from(rng: random.Random) -> str:
    """A version-4 UUID string from ``rng``, so event ids are reproducible under ``--seed``.

    Same bits as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, a unit test
    checks it, at a third of the cost.
    """
    n = rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _cumulative(weights: dict[str, float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return tuple(weights), tuple(accumulate(weights.values()))


class LoginEventGenerator:
    """Produces :class:`LoginRecord` streams for backfills and live traffic.

    The population and vocabularies are prepared in ``__init__``; ``backfill`` and
    ``live`` then cost a few microseconds per event.
    """

    def __init__(
        self,
        seed: int = 0,
        users: int = DEFAULT_USERS,
        failure_rate: float = DEFAULT_FAILURE_RATE,
        attack_probability: float = DEFAULT_ATTACK_PROBABILITY,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if not 0.0 <= attack_probability <= 1.0:
            raise ValueError("attack_probability must be between 0 and 1")
        fake = build_faker(seed)
        self.population: tuple[SimulatedUser, ...] = build_population(fake, users)
        fake = fake[fake.locales[0]]
        self._user_cum_weights = tuple(accumulate(u.activity for u in self.population))
        # Addresses and accounts for attacks: datacenter-ish IPs and names that do not exist.
        self._attack_ips = tuple(fake.ipv4_public() for _ in range(64))
        known = {u.user_id for u in self.population}
        self._unknown_user_ids = tuple(
            name
            for name in (
                fake.user_name().lower() + str(fake.random_int(1, 999)) for _ in range(512)
            )
            if name not in known
        )
        self._roaming_ips = tuple(fake.ipv4_public() for _ in range(1024))
        self._countries = tuple(COUNTRIES)
        self._reasons, self._reason_cum = _cumulative(FAILURE_REASONS)
        self._auth_methods = tuple(AUTH_METHODS)
        self.failure_rate = failure_rate
        self.attack_probability = attack_probability
        self.rng = random.Random(seed)
        # Called with each burst once its last event is made (the producer's ground truth).
        self.on_burst: Callable[[Burst], None] | None = None

    # -- public streams -------------------------------------------------------------------

    def backfill(self, start_ms: int, end_ms: int, count: int) -> Iterator[LoginRecord]:
        """Exactly ``count`` events with event times spread over ``[start_ms, end_ms)``."""
        times = backfill_timestamps(start_ms, end_ms, count, self.rng)
        return self._events(times, lambda t: min(t, end_ms - 1))

    def live(self, clock: Any = time.time) -> Iterator[LoginRecord]:
        """An endless stream stamped with the current time; the caller paces it."""

        def now() -> Iterator[int]:
            while True:
                yield int(clock() * 1000)

        return self._events(now(), lambda _: int(clock() * 1000))

    # -- building events ------------------------------------------------------------------

    def _events(self, times: Iterator[int], attack_time: Any) -> Iterator[LoginRecord]:
        """Ordinary logins at ``times``; attack bursts take the place of following events.

        ``attack_time(t)`` turns an attack's planned time into the time to stamp, so a
        backfill burst stays inside the range and a live burst uses the clock.
        """
        rng = self.rng
        attack: list[int] = []  # event times still due in the current burst
        attacker: tuple[str, str, str] = ("", "", "")
        burst = Burst("")
        for t in times:
            if not attack and rng.random() < self.attack_probability:
                size = rng.randint(*ATTACK_SIZE)
                stamp = t
                planned = []
                for _ in range(size):
                    planned.append(stamp)
                    stamp += rng.randint(*ATTACK_SPACING_MS)
                attack = planned[::-1]
                attacker = (
                    rng.choice(self._attack_ips),
                    rng.choice(self._countries),
                    rng.choice(ATTACK_USER_AGENTS),
                )
                burst = Burst(attacker[0])
            if attack:
                record = self._attack_event(attack_time(attack.pop()), attacker, burst)
                if not attack:
                    self._report(burst)
                yield record
                continue
            yield self._login_event(t)
        if attack:  # the stream ended inside a burst: the events made so far were sent
            self._report(burst)

    def _report(self, burst: Burst) -> None:
        if self.on_burst is not None:
            self.on_burst(burst)

    def _login_event(self, epoch_ms: int) -> LoginRecord:
        rng = self.rng
        user = self.population[
            bisect.bisect(self._user_cum_weights, rng.random() * self._user_cum_weights[-1])
        ]
        device = user.devices[
            bisect.bisect(user.device_cum_weights, rng.random() * user.device_cum_weights[-1])
        ]
        if rng.random() < ROAMING_SHARE:
            ip = rng.choice(self._roaming_ips)
        else:
            ip = rng.choice(user.ip_addresses)
        success = rng.random() >= self.failure_rate
        reason = None
        if not success:
            reason = self._reasons[
                bisect.bisect(self._reason_cum, rng.random() * self._reason_cum[-1])
            ]
        return self._record(
            user_id=user.user_id,
            epoch_ms=epoch_ms,
            browser=device.browser,
            user_agent=device.user_agent,
            device_type=device.device_type,
            country=user.country,
            ip=ip,
            auth_method=user.auth_method,
            success=success,
            failure_reason=reason,
        )

    def _attack_event(
        self, epoch_ms: int, attacker: tuple[str, str, str], burst: Burst
    ) -> LoginRecord:
        rng = self.rng
        ip, country, user_agent = attacker
        if rng.random() < ATTACK_KNOWN_USER_SHARE:
            user_id = rng.choice(self.population).user_id
            success = rng.random() < ATTACK_SUCCESS_RATE
            reason = None if success else "invalid_password"
        else:
            user_id = rng.choice(self._unknown_user_ids)
            success, reason = False, "unknown_user"
        burst.add(epoch_ms, user_id, success)
        browser = "Chrome" if user_agent.startswith("Mozilla") else "Other"
        return self._record(
            user_id=user_id,
            epoch_ms=epoch_ms,
            browser=browser,
            user_agent=user_agent,
            device_type="desktop",
            country=country,
            ip=ip,
            auth_method="password",
            success=success,
            failure_reason=reason,
        )

    def _record(
        self,
        *,
        user_id: str,
        epoch_ms: int,
        browser: str,
        user_agent: str,
        device_type: str,
        country: str,
        ip: str,
        auth_method: str,
        success: bool,
        failure_reason: str | None,
    ) -> LoginRecord:
        event = {
            "event_id": uuid4_from(self.rng),
            "user_id": user_id,
            "timestamp": format_timestamp(epoch_ms),
            "browser_info": browser,
            "user_agent": user_agent,
            "device_type": device_type,
            "country": country,
            "ip_address": ip,
            "auth_method": auth_method,
            "success": success,
            "failure_reason": failure_reason,
            "schema_version": SCHEMA_VERSION,
        }
        return LoginRecord(user_id.encode(), orjson.dumps(event), epoch_ms)

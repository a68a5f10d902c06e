"""A Faker provider for login events, and the simulated user population built with it.

Faker is good at realistic names and addresses but calling it for every field of every
event costs about 140 µs per event. So Faker is used where realism lives (user names per
locale, public IP addresses, the weighted vocabularies below) to build a population of
users once; the hot path in :mod:`producer.events` then draws from that population with
a seeded :class:`random.Random`, which is about 30 times faster and just as reproducible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate

from faker import Faker
from faker.providers import BaseProvider

# Country (ISO 3166-1 alpha-2) -> (share of users, Faker locale used for their names).
COUNTRIES: dict[str, tuple[float, str]] = {
    "US": (0.28, "en_US"),
    "IN": (0.10, "en_IN"),
    "GB": (0.08, "en_GB"),
    "DE": (0.08, "de_DE"),
    "BR": (0.07, "pt_BR"),
    "FR": (0.06, "fr_FR"),
    "JP": (0.05, "ja_JP"),
    "CA": (0.05, "en_CA"),
    "ES": (0.04, "es_ES"),
    "IT": (0.04, "it_IT"),
    "MX": (0.04, "es_MX"),
    "NL": (0.03, "nl_NL"),
    "AU": (0.03, "en_AU"),
    "PL": (0.03, "pl_PL"),
    "SE": (0.02, "sv_SE"),
}

# Browser family -> (market share, platforms it runs on). Shares follow public
# browser statistics closely enough for analytics demos.
BROWSERS: dict[str, tuple[float, tuple[str, ...]]] = {
    "Chrome": (0.64, ("Windows", "macOS", "Android", "Linux", "iOS")),
    "Safari": (0.19, ("macOS", "iOS")),
    "Edge": (0.05, ("Windows", "macOS")),
    "Firefox": (0.04, ("Windows", "Linux", "macOS")),
    "Samsung Internet": (0.05, ("Android",)),
    "Opera": (0.03, ("Windows", "Android")),
}

MOBILE_PLATFORMS = frozenset({"Android", "iOS"})

AUTH_METHODS: dict[str, float] = {
    "password": 0.52,
    "password+otp": 0.22,
    "sso": 0.16,
    "passkey": 0.10,
}

# Why an ordinary (non-attack) login fails.
FAILURE_REASONS: dict[str, float] = {
    "invalid_password": 0.70,
    "mfa_failed": 0.12,
    "expired_password": 0.08,
    "account_locked": 0.06,
    "unknown_user": 0.04,
}

# Clients seen in credential-stuffing attacks: scripts, and scripts pretending to be Chrome.
ATTACK_USER_AGENTS: tuple[str, ...] = (
    "python-requests/2.32.3",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
)

_PLATFORM_TOKENS: dict[str, tuple[str, ...]] = {
    "Windows": ("Windows NT 10.0; Win64; x64",),
    "macOS": ("Macintosh; Intel Mac OS X 10_15_7",),
    "Linux": ("X11; Linux x86_64",),
    "Android": (
        "Linux; Android 14; SM-S918B",
        "Linux; Android 13; Pixel 7",
        "Linux; Android 14; SM-A546B",
        "Linux; Android 12; moto g(60)",
    ),
    "iOS": (
        "iPhone; CPU iPhone OS 17_5 like Mac OS X",
        "iPhone; CPU iPhone OS 18_1 like Mac OS X",
        "iPad; CPU OS 17_6 like Mac OS X",
    ),
}

_USER_NAME_UNSAFE = re.compile(r"[^a-z0-9._]")


@dataclass(frozen=True, slots=True)
class Device:
    """One browser on one device that a user logs in from."""

    browser: str
    user_agent: str
    device_type: str


@dataclass(frozen=True, slots=True)
class SimulatedUser:
    """A user whose habits stay stable across events, so per-user analytics make sense."""

    user_id: str
    country: str
    ip_addresses: tuple[str, ...]
    devices: tuple[Device, ...]
    device_cum_weights: tuple[float, ...]
    auth_method: str
    activity: float


class LoginProvider(BaseProvider):
    """Faker provider for the vocabulary of login events.

    Registered like any Faker provider (``fake.add_provider(LoginProvider)``), it adds
    ``browser_family()``, ``login_user_agent()``, ``auth_method()``, ``login_country()``
    and ``simulated_user()``.
    """

    def _weighted(self, weights: dict[str, float]) -> str:
        """One key of ``weights``, drawn with the generator's seeded RNG.

        Faker's own weighting is switched off (``use_weighting=False``) for speed, so
        weighted vocabularies draw through this.
        """
        return self.generator.random.choices(tuple(weights), tuple(weights.values()))[0]

    def browser_family(self) -> str:
        """A browser family, weighted by market share."""
        return self._weighted({name: share for name, (share, _) in BROWSERS.items()})

    def login_user_agent(self, browser: str | None = None, platform: str | None = None) -> str:
        """A modern, internally consistent User-Agent string for ``browser`` on ``platform``."""
        browser = browser or self.browser_family()
        platform = platform or self.random_element(BROWSERS[browser][1])
        token = self.random_element(_PLATFORM_TOKENS[platform])
        build, patch = self.random_int(5000, 6800), self.random_int(40, 200)
        chrome = f"{self.random_int(118, 131)}.0.{build}.{patch}"
        webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
        mobile = " Mobile" if platform in MOBILE_PLATFORMS else ""
        if browser == "Safari" or (browser == "Chrome" and platform == "iOS"):
            version = f"{self.random_int(16, 18)}.{self.random_int(0, 6)}"
            prefix = f"Mozilla/5.0 ({token}) AppleWebKit/605.1.15 (KHTML, like Gecko)"
            if browser == "Chrome":
                return f"{prefix} CriOS/{chrome} Mobile/15E148 Safari/604.1"
            return f"{prefix} Version/{version}{mobile} Safari/605.1.15"
        if browser == "Firefox":
            version = f"{self.random_int(115, 133)}.0"
            return f"Mozilla/5.0 ({token}; rv:{version}) Gecko/20100101 Firefox/{version}"
        base = f"Mozilla/5.0 ({token}) {webkit} Chrome/{chrome}{mobile} Safari/537.36"
        if browser == "Edge":
            return f"{base} Edg/{chrome}"
        if browser == "Opera":
            return f"{base} OPR/{self.random_int(100, 115)}.0.0.0"
        if browser == "Samsung Internet":
            version = f"{self.random_int(22, 26)}.0"
            return base.replace(f"Chrome/{chrome}", f"SamsungBrowser/{version} Chrome/{chrome}")
        return base

    def auth_method(self) -> str:
        """How a user signs in: password, password with OTP, SSO or passkey."""
        return self._weighted(AUTH_METHODS)

    def login_country(self) -> str:
        """A country code weighted by the share of users living there."""
        return self._weighted({code: share for code, (share, _) in COUNTRIES.items()})

    def simulated_user(self, user_id: str, country: str) -> SimulatedUser:
        """A user with one to three devices, one to three usual IPs and a stable sign-in method.

        ``activity`` follows a heavy-tailed distribution: a few users log in far more
        often than most, as in real services.
        """
        devices = []
        for _ in range(self.random_int(1, 3)):
            browser = self.browser_family()
            platform = self.random_element(BROWSERS[browser][1])
            device_type = "mobile" if platform in MOBILE_PLATFORMS else "desktop"
            devices.append(Device(browser, self.login_user_agent(browser, platform), device_type))
        # The first device is the usual one.
        weights = (
            [0.75] + [0.25 / (len(devices) - 1)] * (len(devices) - 1) if len(devices) > 1 else [1.0]
        )
        ips = tuple(self.generator.ipv4_public() for _ in range(self.random_int(1, 3)))
        return SimulatedUser(
            user_id=user_id,
            country=country,
            ip_addresses=ips,
            devices=tuple(devices),
            device_cum_weights=tuple(accumulate(weights)),
            auth_method=self.auth_method(),
            activity=self.generator.random.lognormvariate(0.0, 1.0),
        )


def build_faker(seed: int) -> Faker:
    """A seeded multi-locale Faker with :class:`LoginProvider` registered.

    ``use_weighting=False`` makes Faker's own element choices cheaper; our weights are
    explicit in the vocabularies above.
    """
    locales = sorted({locale for _, locale in COUNTRIES.values()})
    fake = Faker(locales, use_weighting=False)
    for locale in fake.locales:
        fake[locale].add_provider(LoginProvider)
    fake.seed_instance(seed)
    return fake


def build_population(fake: Faker, size: int) -> tuple[SimulatedUser, ...]:
    """``size`` users with unique, locale-flavoured user ids (``user_id`` is the Kafka key)."""
    if size < 1:
        raise ValueError("the population needs at least one user")
    users: list[SimulatedUser] = []
    taken: set[str] = set()
    primary = fake[fake.locales[0]]
    for _ in range(size):
        country = primary.login_country()
        localized = fake[COUNTRIES[country][1]]
        base = _USER_NAME_UNSAFE.sub("", localized.user_name().lower()) or "user"
        user_id = base
        while user_id in taken:
            user_id = f"{base}{primary.random_int(1, 9999)}"
        taken.add(user_id)
        users.append(primary.simulated_user(user_id, country))
    return tuple(users)

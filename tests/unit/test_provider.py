"""The Faker provider's User-Agent strings, exactly, at both ends of every random range.

``random_int`` is replaced by one that always answers the lowest (or the highest) value it
is asked for, and ``random_element`` by one that answers the first element, so every
string below is known in advance from the browsers' published formats."""

from __future__ import annotations

import pytest
from faker import Faker

from producer.provider import LoginProvider

WINDOWS = "Windows NT 10.0; Win64; x64"
MAC = "Macintosh; Intel Mac OS X 10_15_7"
ANDROID = "Linux; Android 14; SM-S918B"
IPHONE = "iPhone; CPU iPhone OS 17_5 like Mac OS X"
WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
SAFARI_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"


def provider(end: str) -> LoginProvider:
    fake = Faker("en_US")
    fake.seed_instance(0)
    login = LoginProvider(fake)
    pick = min if end == "low" else max
    login.random_int = lambda min=0, max=9999, step=1: pick(min, max)  # Faker's defaults
    login.random_element = lambda elements: next(iter(elements))
    return login


LOW = {
    ("Chrome", "Windows"): f"Mozilla/5.0 ({WINDOWS}) {WEBKIT} Chrome/118.0.5000.40 Safari/537.36",
    ("Chrome", "Android"): (
        f"Mozilla/5.0 ({ANDROID}) {WEBKIT} Chrome/118.0.5000.40 Mobile Safari/537.36"
    ),
    ("Chrome", "iOS"): (
        f"Mozilla/5.0 ({IPHONE}) {SAFARI_WEBKIT} CriOS/118.0.5000.40 Mobile/15E148 Safari/604.1"
    ),
    ("Safari", "macOS"): f"Mozilla/5.0 ({MAC}) {SAFARI_WEBKIT} Version/16.0 Safari/605.1.15",
    (
        "Safari",
        "iOS",
    ): f"Mozilla/5.0 ({IPHONE}) {SAFARI_WEBKIT} Version/16.0 Mobile Safari/605.1.15",
    ("Firefox", "Windows"): f"Mozilla/5.0 ({WINDOWS}; rv:115.0) Gecko/20100101 Firefox/115.0",
    ("Edge", "macOS"): (
        f"Mozilla/5.0 ({MAC}) {WEBKIT} Chrome/118.0.5000.40 Safari/537.36 Edg/118.0.5000.40"
    ),
    ("Opera", "Android"): (
        f"Mozilla/5.0 ({ANDROID}) {WEBKIT} Chrome/118.0.5000.40 Mobile Safari/537.36 OPR/100.0.0.0"
    ),
    ("Samsung Internet", "Android"): (
        f"Mozilla/5.0 ({ANDROID}) {WEBKIT} SamsungBrowser/22.0 Chrome/118.0.5000.40 Mobile "
        "Safari/537.36"
    ),
}

HIGH = {
    ("Chrome", "Windows"): f"Mozilla/5.0 ({WINDOWS}) {WEBKIT} Chrome/131.0.6800.200 Safari/537.36",
    ("Safari", "macOS"): f"Mozilla/5.0 ({MAC}) {SAFARI_WEBKIT} Version/18.6 Safari/605.1.15",
    ("Firefox", "Windows"): f"Mozilla/5.0 ({WINDOWS}; rv:133.0) Gecko/20100101 Firefox/133.0",
    ("Opera", "Windows"): (
        f"Mozilla/5.0 ({WINDOWS}) {WEBKIT} Chrome/131.0.6800.200 Safari/537.36 OPR/115.0.0.0"
    ),
    ("Samsung Internet", "Android"): (
        f"Mozilla/5.0 ({ANDROID}) {WEBKIT} SamsungBrowser/26.0 Chrome/131.0.6800.200 Mobile "
        "Safari/537.36"
    ),
}


@pytest.mark.parametrize(("browser", "platform"), list(LOW))
def test_user_agents_at_the_low_end(browser, platform):
    assert provider("low").login_user_agent(browser, platform) == LOW[browser, platform]


@pytest.mark.parametrize(("browser", "platform"), list(HIGH))
def test_user_agents_at_the_high_end(browser, platform):
    assert provider("high").login_user_agent(browser, platform) == HIGH[browser, platform]


def test_without_a_platform_the_browsers_first_platform_is_used():
    login = provider("low")
    assert login.login_user_agent("Safari") == LOW["Safari", "macOS"]  # Safari: macOS, iOS
    assert login.login_user_agent("Samsung Internet") == LOW["Samsung Internet", "Android"]


def test_without_a_browser_one_is_drawn_by_market_share(monkeypatch):
    login = provider("low")
    drawn = []

    def weighted(weights):
        drawn.append(weights)
        return "Firefox"

    monkeypatch.setattr(login, "_weighted", weighted)
    assert login.login_user_agent() == LOW["Firefox", "Windows"]
    assert drawn == [
        {
            "Chrome": 0.64,
            "Safari": 0.19,
            "Edge": 0.05,
            "Firefox": 0.04,
            "Samsung Internet": 0.05,
            "Opera": 0.03,
        }
    ]


def test_weighted_draws_follow_the_weights():
    login = provider("low")
    draws = {login._weighted({"never": 0.0, "always": 1.0}) for _ in range(200)}
    assert draws == {"always"}

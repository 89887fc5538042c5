"""The alert configuration: webhook targets parsed from `CONVINTEL_ALERT_WEBHOOK_URLS`, the
signing secret and the retry timing, checked once at start-up.

A target is `URL` or `URL|option=value|...`; targets are comma-separated. Options:
`format` (`json`, the default, or `slack`), `min_level` (the lowest escalation level the
target hears about, default `none`: every change) and `name` (how the API and logs show
the target, default the URL's host: a Slack webhook URL is itself a secret, so the URL is
never shown)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from nlp.vocabulary import ESCALATION_LEVELS, EscalationLevel
from service.settings import Settings

TARGET_SEPARATOR = ","
OPTION_SEPARATOR = "|"
MAX_NAME_LENGTH = 64


class AlertConfigError(ValueError):
    """The alert settings cannot be used; the message names the setting (never a URL or secret)."""


class AlertFormat(str, Enum):
    json = "json"
    slack = "slack"


def level_rank(level: str) -> int:
    """A level's place in none < monitor < escalate < urgent."""
    return ESCALATION_LEVELS.index(level)


@dataclass(frozen=True)
class WebhookTarget:
    url: str = field(repr=False)  # may be a secret (Slack's are): never in a log line or traceback
    format: AlertFormat = AlertFormat.json
    min_level: EscalationLevel = "none"
    name: str = ""

    def wants(self, old_level: str, new_level: str) -> bool:
        """Whether a change from `old_level` to `new_level` reaches this target: when either
        side is at least `min_level`, so a target told that a conversation became urgent is
        also told when it stops being urgent."""
        floor = level_rank(self.min_level)
        return max(level_rank(old_level), level_rank(new_level)) >= floor


@dataclass(frozen=True)
class AlertConfig:
    """Everything the publisher and the delivery worker need. No targets: alerts are off."""

    targets: tuple[WebhookTarget, ...]
    secret: bytes = field(repr=False)
    max_attempts: int
    backoff_base_s: float
    backoff_cap_s: float
    poll_interval_s: float
    timeout_s: float

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    def target(self, url: str) -> WebhookTarget | None:
        """The configured target with this URL, or None (no longer configured)."""
        return next((t for t in self.targets if t.url == url), None)


def _target(position: int, entry: str) -> WebhookTarget:
    where = f"CONVINTEL_ALERT_WEBHOOK_URLS, webhook {position}"
    url, *options = (part.strip() for part in entry.split(OPTION_SEPARATOR))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertConfigError(f"{where}: expected an http:// or https:// URL with a host")
    values: dict[str, str] = {}
    for option in options:
        key, equals, value = (s.strip() for s in option.partition("="))
        if not equals or not value:
            raise AlertConfigError(f"{where}: expected option=value, got {key!r}")
        if key in values:
            raise AlertConfigError(f"{where}: option {key!r} is given twice")
        values[key] = value
    unknown = sorted(set(values) - {"format", "min_level", "name"})
    if unknown:
        raise AlertConfigError(f"{where}: unknown options {unknown}; known: format, min_level, name")
    formats = [f.value for f in AlertFormat]
    if values.get("format", AlertFormat.json.value) not in formats:
        raise AlertConfigError(f"{where}: format must be one of {', '.join(formats)}")
    if values.get("min_level", "none") not in ESCALATION_LEVELS:
        raise AlertConfigError(f"{where}: min_level must be one of {', '.join(ESCALATION_LEVELS)}")
    name = values.get("name") or parts.netloc.rpartition("@")[2]  # never user:password@
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise AlertConfigError(f"{where}: name must be at most {MAX_NAME_LENGTH} printable characters")
    return WebhookTarget(
        url=url,
        format=AlertFormat(values.get("format", AlertFormat.json.value)),
        min_level=values.get("min_level", "none"),  # type: ignore[arg-type]  # checked above
        name=name,
    )


def parse_webhook_targets(value: str) -> tuple[WebhookTarget, ...]:
    """The targets of a `CONVINTEL_ALERT_WEBHOOK_URLS` value; raises AlertConfigError."""
    entries = [e.strip() for e in value.split(TARGET_SEPARATOR)]
    targets = tuple(_target(position, e) for position, e in enumerate(entries, start=1) if e)
    urls = [t.url for t in targets]
    if len(set(urls)) != len(urls):
        raise AlertConfigError("CONVINTEL_ALERT_WEBHOOK_URLS: a URL is listed twice")
    return targets


def load_alert_config(settings: Settings) -> AlertConfig:
    """The alert configuration `settings` describe; raises AlertConfigError."""
    urls = settings.alert_webhook_urls.get_secret_value() if settings.alert_webhook_urls else ""
    targets = parse_webhook_targets(urls)
    secret = settings.alert_webhook_secret.get_secret_value() if settings.alert_webhook_secret else ""
    if targets and not secret:
        raise AlertConfigError("CONVINTEL_ALERT_WEBHOOK_SECRET is required when CONVINTEL_ALERT_WEBHOOK_URLS is set")
    if settings.alert_backoff_cap_s < settings.alert_backoff_base_s:
        raise AlertConfigError("CONVINTEL_ALERT_BACKOFF_CAP_S must be at least CONVINTEL_ALERT_BACKOFF_BASE_S")
    return AlertConfig(
        targets=targets,
        secret=secret.encode("utf-8"),
        max_attempts=settings.alert_max_attempts,
        backoff_base_s=settings.alert_backoff_base_s,
        backoff_cap_s=settings.alert_backoff_cap_s,
        poll_interval_s=settings.alert_poll_interval_s,
        timeout_s=settings.alert_timeout_s,
    )

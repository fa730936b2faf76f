"""Per-platform download profiles (YAML): cookies, pacing, user agent, proxy, concurrency.

A profile file has a ``default`` section and a ``platforms`` mapping whose entries override
it for one platform (the yt-dlp extractor name in lower case, or the input's ``platform``)::

    default: {concurrency: 4, retries: 3, backoff_s: 2.0}
    platforms:
      tiktok: {cookies_file: ~/.config/emotions-data/tiktok.txt, sleep_interval_s: 2}
      douyin: {proxy_env: DOUYIN_PROXY, concurrency: 1}

Secrets stay out of the file when possible (``proxy_env`` names an environment variable) and
never leave this process except as yt-dlp options: ``redact`` removes them from any message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotions_data.schema.config import build, check, load_mapping


@dataclass(frozen=True)
class PlatformProfile:
    cookies_file: str | None = None
    proxy: str | None = None
    proxy_env: str | None = None
    user_agent: str | None = None
    sleep_interval_s: float = 0.0
    rate_limit: str | None = None  # yt-dlp style, e.g. "2M" (bytes per second)
    concurrency: int | None = None
    retries: int = 3
    backoff_s: float = 2.0
    socket_timeout_s: float = 30.0

    def resolved_proxy(self) -> str | None:
        if self.proxy:
            return self.proxy
        if self.proxy_env:
            return os.environ.get(self.proxy_env) or None
        return None

    def secrets(self) -> list[str]:
        """Strings that must never appear in output or manifests."""
        found = [s for s in (self.cookies_file, self.resolved_proxy()) if s]
        if self.cookies_file:
            found.append(str(Path(self.cookies_file).expanduser()))
        return found


@dataclass(frozen=True)
class FetchProfile:
    default: PlatformProfile = PlatformProfile()
    platforms: tuple[tuple[str, PlatformProfile], ...] = ()

    def for_platform(self, platform: str | None) -> PlatformProfile:
        return dict(self.platforms).get((platform or "").lower(), self.default)

    def concurrency_caps(self) -> dict[str, int]:
        return {name: p.concurrency for name, p in self.platforms if p.concurrency}


@dataclass(frozen=True)
class _ProfileFile:
    """The top level of a profile file; each section is checked on its own (``_section``)."""

    default: dict[str, Any] | None = None
    platforms: dict[Any, Any] | None = None  # platform name -> section


def _section(data: Any, base: PlatformProfile, where: str, key: str) -> PlatformProfile:
    """One section (``default`` or ``platforms.NAME``) over ``base``, typed by
    ``schema.config``; wrong strings are never shown (a misplaced proxy is a secret too)."""
    profile = build(PlatformProfile, data, where, prefix=key, base=base, hide_strings=True)
    if profile.rate_limit is not None:
        from yt_dlp.utils import parse_bytes

        check(
            parse_bytes(profile.rate_limit) is not None,
            where,
            f"{key}.rate_limit",
            "a rate like 500K or 2M",
            profile.rate_limit,
        )
    for name in ("sleep_interval_s", "backoff_s", "socket_timeout_s"):
        value = getattr(profile, name)
        check(value >= 0, where, f"{key}.{name}", "a number >= 0", value)
    check(profile.retries >= 0, where, f"{key}.retries", "an integer >= 0", profile.retries)
    if profile.concurrency is not None:
        check(
            profile.concurrency >= 1,
            where,
            f"{key}.concurrency",
            "an integer >= 1 or null",
            profile.concurrency,
        )
    return profile


def load_profile(source: str | Path | dict[str, Any] | FetchProfile | None) -> FetchProfile:
    """Load a profile YAML (or mapping); ``None`` gives the defaults."""
    if source is None:
        return FetchProfile()
    if isinstance(source, FetchProfile):
        return source
    data, where = load_mapping(source, "profile")
    top = build(_ProfileFile, data, where)
    default = _section(top.default, PlatformProfile(), where, "default")
    per = tuple(
        (str(name).lower(), _section(conf, default, where, f"platforms.{name}"))
        for name, conf in (top.platforms or {}).items()
    )
    return FetchProfile(default=default, platforms=per)


_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")


def redact(text: str, secrets: list[str]) -> str:
    """Remove secrets (and any user:password@ in URLs) from a message."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "<redacted>")
    return _CREDENTIALS_IN_URL.sub("<redacted>@", text)

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
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ConfigError
from emotions_data.schema.yamlfile import read_yaml


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


_FIELDS = {f.name for f in fields(PlatformProfile)}
_TYPES = {f.name: f.type for f in fields(PlatformProfile)}


def _of_kind(value: Any, kind: str) -> bool:
    """Whether a YAML value fits a field declared ``str``, ``int``, ``float`` (or ``... | None``)."""
    if value is None:
        return "None" in kind
    if isinstance(value, bool):
        return False  # YAML true/false is neither a number nor a name
    base = kind.split("|")[0].strip()
    if base == "float":
        return isinstance(value, int | float)
    return isinstance(value, {"int": int, "str": str}[base])


def _section(data: Any, base: PlatformProfile, where: str) -> PlatformProfile:
    if data is None:
        return base
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}"
        )
    for name, value in data.items():
        # a wrong type would otherwise crash the run inside yt-dlp, or be ignored there
        kind = str(_TYPES[name])
        if not _of_kind(value, kind):
            # the type, not the value: a misplaced proxy or cookies path is a secret too
            got = type(value).__name__
            raise ConfigError(f"{where}: {name} must be {kind.replace('|', 'or')}, got a {got}")
    if data.get("rate_limit") is not None:
        from yt_dlp.utils import parse_bytes

        if parse_bytes(str(data["rate_limit"])) is None:
            raise ConfigError(
                f"{where}: rate_limit {data['rate_limit']!r} is not a rate like 500K or 2M"
            )
    try:
        profile = replace(base, **data)
        for name in ("sleep_interval_s", "backoff_s", "socket_timeout_s"):
            if float(getattr(profile, name)) < 0:
                raise ValueError(f"{name} must be >= 0")
        if profile.retries < 0 or (profile.concurrency is not None and profile.concurrency < 1):
            raise ValueError("retries must be >= 0 and concurrency >= 1")
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return profile


def load_profile(source: str | Path | dict[str, Any] | FetchProfile | None) -> FetchProfile:
    """Load a profile YAML (or mapping); ``None`` gives the defaults."""
    if source is None:
        return FetchProfile()
    if isinstance(source, FetchProfile):
        return source
    where = "profile"
    if isinstance(source, dict):
        data: Any = source
    else:
        where = str(source)
        data = read_yaml(source, "profile") or {}
    if not isinstance(data, dict) or not set(data) <= {"default", "platforms"}:
        raise ConfigError(f"{where}: expected top-level keys 'default' and/or 'platforms'")
    default = _section(data.get("default"), PlatformProfile(), f"{where}: default")
    platforms = data.get("platforms") or {}
    if not isinstance(platforms, dict):
        raise ConfigError(f"{where}: 'platforms' must map platform names to settings")
    per = tuple(
        (str(name).lower(), _section(conf, default, f"{where}: platforms.{name}"))
        for name, conf in platforms.items()
    )
    return FetchProfile(default=default, platforms=per)


_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")


def redact(text: str, secrets: list[str]) -> str:
    """Remove secrets (and any user:password@ in URLs) from a message."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "<redacted>")
    return _CREDENTIALS_IN_URL.sub("<redacted>@", text)

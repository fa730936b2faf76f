"""Where a Label Studio answers, and the one HTTP stack that talks to it (httpx, as the SDK).

``Server`` names a server and its admin token; :func:`http_client` makes the httpx client every
caller uses (the SDK wrapper in ``client.py`` hands it to ``label_studio_sdk``, server start-up
and ``accounts`` call it directly), so TLS trust and time-outs are set in one place. A server
started with its own certificate (``--certfile``) is reached on loopback with that certificate
pinned: it is the only trust anchor and the host name is not checked (we dial 127.0.0.1, which a
certificate for the lab's public name does not cover).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotions_data.schema.errors import ServiceError


@dataclass(frozen=True)
class Server:
    """Where a Label Studio answers and how to authenticate (the token is never printed)."""

    url: str
    token: str
    pid: int | None = None
    data_dir: Path | None = None
    #: Folder of the Local Storage connection that serves local media (embedded server only).
    media_root: Path | None = None
    #: The address people open in a browser (``--host``); ``url`` is the local one we use.
    public_url: str | None = None
    #: ``start_server`` found this server already running instead of starting it.
    already_running: bool = False
    #: The certificate the embedded server serves (TLS): pinned by :func:`http_client`.
    certfile: Path | None = None
    #: ``sqlite`` or ``postgres`` (embedded server), ``None`` for an external one.
    database: str | None = None

    @property
    def identity(self) -> str:
        """What ids are bound to: the data folder of an embedded server (its port changes on
        every start), else the URL."""
        return str(self.data_dir.resolve()) if self.data_dir is not None else self.url.rstrip("/")

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"Server(url={self.url!r}, pid={self.pid})"


def tls_context(certfile: Path | None) -> ssl.SSLContext | bool:
    """httpx's ``verify``: the system's trust store, or only ``certfile`` pinned."""
    if certfile is None:
        return True
    ctx = ssl.create_default_context(cafile=str(certfile))
    # the served certificate itself is the anchor (self-signed or not), on a loopback address
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.check_hostname = False
    return ctx


def http_client(
    url: str, token: str | None = None, *, certfile: Path | None = None, timeout: float = 300.0
) -> Any:
    """An ``httpx.Client`` for ``url`` with the admin token (when given) and the TLS trust."""
    import httpx

    headers = {"Authorization": f"Token {token}"} if token else {}
    return httpx.Client(
        base_url=url.rstrip("/"),
        headers=headers,
        timeout=timeout,
        verify=tls_context(certfile),
        follow_redirects=True,
    )


def whoami(
    url: str, token: str, timeout: float = 5.0, certfile: Path | None = None
) -> dict[str, object]:
    """The user the token belongs to; raises ``ServiceError`` when the server does not answer."""
    import httpx

    try:
        with http_client(url, token, certfile=certfile, timeout=timeout) as http:
            resp = http.get("/api/current-user/whoami")
    except (httpx.TransportError, OSError) as exc:
        raise ServiceError(f"Label Studio at {url} is unreachable ({type(exc).__name__})") from None
    if resp.status_code != 200:
        raise ServiceError(f"Label Studio at {url} refused the token (HTTP {resp.status_code})")
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ServiceError(f"Label Studio at {url} gave an unexpected whoami answer")
    return data

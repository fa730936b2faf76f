"""Django settings of the embedded Label Studio: its own settings plus the blinding middleware.

Label Studio's ``server.py`` only sets ``DJANGO_SETTINGS_MODULE`` when it is unset, so naming this
module in the environment loads it instead of ``label_studio.core.settings.label_studio``.
"""

# Label Studio's settings module reads ``django.conf.settings`` while it is still being imported
# (Sentry set-up); Django then builds a first settings object from this module as it is at that
# moment. Starting from the same base settings and a blank Sentry DSN keeps that read working.
from core.settings.base import *  # type: ignore[import-not-found]  # noqa: F403

SENTRY_DSN = ""
FRONTEND_SENTRY_DSN = ""

from label_studio.core.settings.label_studio import *  # type: ignore[import-not-found]  # noqa: E402, F403

# Last: it runs after every authentication middleware, so it sees the user the views will see.
MIDDLEWARE.append("emotions_data_ls_blinding.BlindingMiddleware")  # type: ignore[name-defined]  # noqa: F405

import os  # noqa: E402

# Behind a reverse proxy that ends TLS (see docs/guides/lab-server.md): the proxy says the
# request came over https, so Django builds https links and accepts the https origin.
if os.environ.get("EMOTIONS_DATA_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# SQLite under several WSGI workers: a transaction that starts as a read and then writes
# ("deferred") fails at once with "database is locked" when another process wrote meanwhile,
# whatever the busy timeout. Taking the write lock at BEGIN makes writers queue (up to
# ``timeout`` seconds) instead. WAL lets reads go on during a write; Label Studio sets it only
# in its own ``runserver`` start-up, so every connection asks for it here.
_db = DATABASES["default"]  # type: ignore[name-defined]  # noqa: F405
if _db["ENGINE"].endswith("sqlite3"):
    _db.setdefault("OPTIONS", {}).update(
        timeout=30,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )

# PostgreSQL: Label Studio leaves CONN_MAX_AGE at 0, a new connection per request, and each one
# costs a backend fork and a scram-sha-256 exchange on both sides (under load the database's
# CPU per judgement was half the server's). Each worker thread keeps its connection instead;
# the health check at the start of a request replaces one the database dropped (killed,
# restarted after a full disk), so a round still heals by itself.
elif _db["ENGINE"].endswith("postgresql"):
    _db["CONN_MAX_AGE"] = 300
    _db["CONN_HEALTH_CHECKS"] = True

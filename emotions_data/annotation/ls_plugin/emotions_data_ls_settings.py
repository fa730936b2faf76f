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

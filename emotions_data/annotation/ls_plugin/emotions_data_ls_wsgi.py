"""The WSGI application gunicorn serves: Label Studio's Django app behind WhiteNoise.

Static assets (the UI's JavaScript, CSS, fonts: tens of MB per first visit) are answered by
WhiteNoise straight from the folders Label Studio's own development-only ``serve`` view reads,
with caching headers, before Django, its middleware and a database connection are involved. A
file it does not have (the UI asks for some by a manifest alias) falls through to Django.

gunicorn loads this module once in its master (``--preload``) and forks the workers from it;
Label Studio queries the database while its apps load, so the master's connections are closed
here: a connection shared by forked workers would mix their conversations.
"""

from __future__ import annotations

import os

from core.wsgi import application as django_application  # type: ignore[import-not-found]
from django.conf import settings  # type: ignore[import-not-found]
from django.db import connections  # type: ignore[import-not-found]
from whitenoise import WhiteNoise  # type: ignore[import-not-found]

#: Answered by a Django view that writes the host into the file: not served as it is on disk.
RENDERED = ("/static/fonts/roboto/roboto.css", "/static/js/sw.js", "/static/js/sw-fallback.js")

application = WhiteNoise(django_application, max_age=3600, autorefresh=False)
for folder, prefix in (
    (settings.STATIC_ROOT, "static/"),
    (settings.REACT_APP_ROOT, "react-app/"),
    (settings.EDITOR_ROOT, "label-studio-frontend/"),
    (settings.DM_ROOT, "dm/"),
):
    if folder and os.path.isdir(folder):
        application.add_files(folder, prefix=prefix)
for url in RENDERED:
    application.files.pop(url, None)

connections.close_all()

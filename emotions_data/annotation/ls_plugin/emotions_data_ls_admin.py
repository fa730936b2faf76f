"""Administration of the embedded Label Studio through its own models (run in its venv).

``python -m emotions_data_ls_admin personalise SECRETS_JSON`` gives the database the root's own
admin password, API token and invite token (the copied template holds the template's), and
``migrate`` applies Label Studio's migrations when its database is behind. Both run with the
same settings and database environment as the server (``server.py`` sets them), through Django's
ORM and password hashers, so nothing of Label Studio's tables is written by hand and the same
code serves SQLite and PostgreSQL. Secrets come in a 0600 file, never on the command line.
"""

from __future__ import annotations

import json
import sys


def _setup() -> None:
    import django  # type: ignore[import-not-found]

    django.setup()


def personalise(secrets_path: str) -> None:
    from django.db import transaction  # type: ignore[import-not-found]
    from organizations.models import Organization  # type: ignore[import-not-found]
    from rest_framework.authtoken.models import Token  # type: ignore[import-not-found]
    from users.models import User  # type: ignore[import-not-found]

    with open(secrets_path, encoding="utf-8") as fh:
        new = json.load(fh)
    with transaction.atomic():
        admin = User.objects.filter(is_superuser=True).order_by("id").first()
        if admin is None:
            raise SystemExit("the Label Studio database has no admin user")
        admin.set_password(str(new["password"]))
        admin.save(update_fields=["password"])
        Token.objects.filter(user=admin).delete()
        Token.objects.create(user=admin, key=str(new["token"]))
        Organization.objects.update(token=str(new["invite_token"]))
    print(json.dumps({"username": admin.email}))


def migrate() -> None:
    from django.core.management import call_command  # type: ignore[import-not-found]
    from django.db import DEFAULT_DB_ALIAS, connections  # type: ignore[import-not-found]
    from django.db.migrations.executor import MigrationExecutor  # type: ignore[import-not-found]

    connection = connections[DEFAULT_DB_ALIAS]
    connection.prepare_database()
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", "--no-color", verbosity=0)
        print(json.dumps({"migrated": True}))
    else:
        print(json.dumps({"migrated": False}))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("personalise", "migrate"):
        print("usage: emotions_data_ls_admin personalise SECRETS_JSON | migrate", file=sys.stderr)
        return 2
    _setup()
    if argv[0] == "personalise":
        personalise(argv[1])
    else:
        migrate()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

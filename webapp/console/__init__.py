"""The operator console at ``/console/``: server-rendered pages over the same services as the API.

Templates, styles, the SVG charts and the one small script (reloading a page while its work is
unfinished) ship in this package; a page loads nothing from the internet. Sign-in takes an API
key; its tenant and role apply to every page.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from flask import Blueprint, Flask
from flask.blueprints import BlueprintSetupState

from orchestrator.config import get_settings

blueprint = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def _session_secret() -> str | None:
    """The key that signs console cookies, derived from ORCHESTRATOR_SECRET_KEY.

    Derived (HMAC with a purpose label), so the Fernet key that seals stored secrets is never
    used as-is for anything else, and every web process behind a load balancer agrees on it.
    """
    secret = get_settings().secret_key
    if not secret:
        return None
    return hmac.new(secret.encode(), b"webapp.console session", hashlib.sha256).hexdigest()


@blueprint.record_once
def _configure(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    if not app.secret_key:
        app.secret_key = _session_secret()
    app.config.update(
        # The API authenticates by header and never reads this cookie: it is sent to the console
        # only, unreadable by scripts, and not on cross-site POSTs.
        SESSION_COOKIE_NAME="orchestrator_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if os.environ.get("CONSOLE_COOKIE_SECURE", "").lower() in ("1", "true", "yes"):
        # Behind TLS: never send the cookie over plain HTTP.
        app.config["SESSION_COOKIE_SECURE"] = True


from webapp.console import views  # noqa: E402,F401 - registers the routes on the blueprint

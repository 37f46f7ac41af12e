"""Swagger UI's scripts and styles, served by the app itself from the swagger-ui-bundle package:
the API docs page works on a NOC network without internet (no CDN)."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

#: Where the docs page (flask-smorest's template) loads Swagger UI from.
ASSETS_URL = "/api/v1/docs/assets/"

blueprint = Blueprint("docs_assets", __name__)


@blueprint.get(f"{ASSETS_URL}<path:filename>")
def asset(filename: str) -> Response:
    # send_from_directory refuses paths that leave the directory.
    return send_from_directory(swagger_ui_path, filename, max_age=86400)

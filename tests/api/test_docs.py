"""The browsable API docs work without internet access: every asset comes from the app."""

from __future__ import annotations

import re
from urllib.parse import urlparse


def test_the_docs_page_loads_everything_from_the_app_itself(api):
    # Given the docs page
    response = api.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.get_data(as_text=True)

    # Then it names no external host, and every script and style it loads is served
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert references, "the page loads nothing?"
    assert [r for r in references if urlparse(r).netloc] == []
    for reference in references:
        asset = api.get(reference)
        assert asset.status_code == 200, reference
        assert len(asset.get_data()) > 1000, reference
    assert "/api/v1/openapi.json" in page


def test_the_assets_route_serves_only_its_own_directory(api):
    assert api.get("/api/v1/docs/assets/../../../../etc/passwd").status_code == 404
    assert api.get("/api/v1/docs/assets/no-such-file.js").status_code == 404

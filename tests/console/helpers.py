"""What the console tests do in the browser, as a person would."""

from __future__ import annotations

from typing import Any

CONSOLE = "/console"


def sign_in(page: Any, key: str) -> None:
    """Sign in through the form and land on the workflow list."""
    page.goto(f"{CONSOLE}/sign-in")
    page.fill("#api_key", key)
    page.click("#sign-in")
    page.wait_for_url("**/console/workflows*")


def csrf_token(page: Any) -> str:
    """This session's form token, read from the sign-out form every page carries."""
    return page.locator("input[name=csrf_token]").first.get_attribute("value")

"""`orchestrator api-key`: create prints the key last, list never shows it, revoke works."""

from __future__ import annotations

import uuid

import pytest

from orchestrator import cli
from tests.api.helpers import WORKFLOWS, auth


def test_create_list_revoke(api, tenant, capsys):
    assert cli.main(["api-key", "create", "--tenant", tenant, "--role", "viewer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    key = lines[-1]
    key_id = lines[0].split()[3]
    assert api.get(WORKFLOWS, headers=auth(key)).status_code == 200

    assert cli.main(["api-key", "list", "--tenant", tenant]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and key[:10] in listing and key not in listing

    assert cli.main(["api-key", "revoke", key_id]) == 0
    assert api.get(WORKFLOWS, headers=auth(key)).status_code == 401


def test_revoking_nonsense_fails_cleanly(capsys):
    assert cli.main(["api-key", "revoke", str(uuid.uuid4())]) == 1
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["api-key", "revoke", "not-a-uuid"])
    assert exited.value.code == 2

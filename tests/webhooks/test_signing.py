"""Signatures, targets and single attempts, without a worker: what each piece decides."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest

from orchestrator.config import get_settings
from orchestrator.webhooks import delivery, signing, targets
from tests.support.receiver import Receiver

BODY = json.dumps({"id": "e1", "type": "workflow.completed"}).encode()


def test_the_readme_recipe_accepts_our_signature_and_rejects_forgeries(readme_verify):
    secret = signing.new_secret()
    header = signing.header(secret, BODY)
    assert readme_verify(secret, BODY, header)
    assert signing.verify(secret, BODY, header)

    t = header.split(",")[0].removeprefix("t=")
    forged = [
        signing.header("whsec_guessed", BODY),  # another secret
        f"t={t},v1={'0' * 64}",  # a made-up digest
        f"t={int(t) + 1},v1={header.split('v1=')[1]}",  # the time moved
    ]
    for bad in forged:
        assert not readme_verify(secret, BODY, bad)
        assert not signing.verify(secret, BODY, bad)
    # A body changed in transit
    assert not readme_verify(secret, BODY + b" ", header)
    # A replay of an old request
    old = signing.header(secret, BODY, timestamp=int(time.time()) - 3600)
    assert not readme_verify(secret, BODY, old)
    assert not signing.verify(secret, BODY, old)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://localhost:8080/x", "http://10.0.0.1/", "http://[::1]/"],
)
def test_private_addresses_are_refused_unless_allowed(url):
    with pytest.raises(targets.TargetRefused):
        targets.check(url, allow_private=False)
    targets.check(url, allow_private=True)


def test_backoff_doubles_up_to_its_cap():
    delays = [delivery.backoff(n, 30, 3600) for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def _attempt(url: str) -> delivery.Attempt:
    return delivery.Attempt(uuid.uuid4(), 1, url, BODY, signing.new_secret())


def test_an_attempt_never_shows_its_secret():
    attempt = _attempt("http://127.0.0.1/")
    assert attempt.secret not in repr(attempt)


def test_a_redirect_is_not_followed_and_counts_as_a_failure():
    with Receiver(204) as elsewhere, Receiver(302) as redirecting:
        redirecting.headers = {"Location": elsewhere.url}
        outcome = delivery.send(_attempt(redirecting.url), get_settings())
        assert (outcome.status_code, outcome.delivered, outcome.error) == (302, False, "HTTP 302")
        assert len(redirecting.requests) == 1
        assert elsewhere.requests == []


def test_a_receiver_that_does_not_answer_in_time_is_a_failure():
    settings = dataclasses.replace(get_settings(), webhook_timeout=0.3)
    with Receiver(204, delay=2) as slow:
        outcome = delivery.send(_attempt(slow.url), settings)
    assert not outcome.delivered
    assert outcome.error == "no answer within 0.3 s"


def test_the_target_is_checked_again_at_delivery():
    # Given an endpoint accepted while private targets were allowed, and a configuration that
    # no longer allows them (or a name that now resolves to a private address)
    settings = dataclasses.replace(get_settings(), webhook_allow_private_targets=False)
    with Receiver(204) as receiver:
        outcome = delivery.send(_attempt(receiver.url), settings)
        # Then nothing is sent, and the attempt failed saying why
        assert receiver.requests == []
    assert not outcome.delivered
    assert outcome.error.startswith("target refused: resolves to 127.0.0.1")


def test_a_signed_request_carries_the_event_id_and_a_verifiable_signature(readme_verify):
    attempt = _attempt("")
    with Receiver(200) as receiver:
        attempt = dataclasses.replace(attempt, url=receiver.url)
        assert delivery.send(attempt, get_settings()).delivered
        (request,) = receiver.requests
    assert request.headers["X-Webhook-Id"] == str(attempt.delivery_id)
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == BODY
    assert readme_verify(attempt.secret, request.body, request.headers["X-Signature"])

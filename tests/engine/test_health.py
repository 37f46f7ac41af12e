"""GET /healthz is 200 only when PostgreSQL and the broker both answer."""

from __future__ import annotations

import socket

import redis

from webapp import create_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_unavailable_when_the_broker_does_not_answer(database):
    app = create_app({"TESTING": True})
    dead = redis.Redis(port=_closed_port(), socket_connect_timeout=0.5)
    app.extensions["broker_ping"] = dead.ping

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error")


def test_details_show_each_systems_circuit(client):
    from orchestrator.integrations.circuit import CircuitBreaker, reset_all

    reset_all()
    breaker = CircuitBreaker.for_system("onos")
    try:
        for _ in range(breaker.threshold):
            breaker.record_failure()

        response = client.get("/healthz")

        # an open circuit is shown, but the API itself stays healthy
        assert response.status_code == 200
        circuits = response.get_json()["details"]["circuits"]
        assert set(circuits) == {"netbox", "onos", "genieacs", "voltha"}
        assert circuits["onos"]["state"] == "open"
        assert circuits["onos"]["failures"] == breaker.threshold
        assert 0 < circuits["onos"]["retry_in_s"] <= breaker.cooldown
        assert circuits["genieacs"] == {"state": "closed", "failures": 0}
    finally:
        reset_all()

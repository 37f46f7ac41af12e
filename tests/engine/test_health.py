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

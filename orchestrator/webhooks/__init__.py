"""Signed webhooks: a tenant's endpoints hear when its workflows end.

- ``targets``: which URLs may be called (http(s), global addresses only unless allowed);
- ``signing``: the secret, the ``X-Signature`` header and how a receiver checks it;
- ``endpoints``: registering, changing and removing endpoints (the secret shown once);
- ``outbox``: events written in the transaction that caused them, published after its commit;
- ``delivery``: one attempt (claim, POST, record), the backoff, and disabling a dead endpoint.
"""

"""Request and response shapes of the API, one module per resource.

Request schemas reject unknown fields; response schemas declare every nullable field, because the
OpenAPI document is generated from them and clients (and schemathesis) hold us to it.
"""

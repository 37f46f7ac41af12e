"""Business logic of each workflow step, one module per system (no Celery here)."""

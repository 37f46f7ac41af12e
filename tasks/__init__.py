"""Celery side of the orchestrator: the app, the step base classes and per-system tasks."""

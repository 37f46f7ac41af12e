"""One client per external system. Clients know nothing of Celery or of our database."""

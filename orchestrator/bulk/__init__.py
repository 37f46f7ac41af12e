"""Bulk jobs: many provisionings submitted as one, started a window at a time.

``jobs`` holds what the API and the CLI ask (create, read, report, cancel); ``checks`` the
set-based validation of every row against the database before anything starts; ``feeder`` the
one place that starts rows (and so decides how many are in flight). Nothing is imported
here: the engine imports the feeder, and the jobs module imports the engine.
"""

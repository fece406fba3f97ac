"""The database: settings, engine and sessions, and migrations under a lock."""

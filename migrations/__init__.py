"""Forward-only SQL migrations and their runner."""

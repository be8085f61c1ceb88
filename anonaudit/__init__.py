"""anonaudit."""

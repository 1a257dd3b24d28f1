"""Authentication: passwords, tokens, guards."""

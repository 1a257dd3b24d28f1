"""ems: operator CLI and the single-machine stack supervisor."""

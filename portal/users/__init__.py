"""Users: administrators manage accounts; clients are the owners of devices."""

"""The hub's broker client: codec (packets), transport (TCP/TLS), connection, adapter."""

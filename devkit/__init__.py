"""The development harness the tests and the benchmarks share: throwaway PostgreSQL and
Mosquitto on free loopback ports, a hub and a portal in-process or as child processes, and
small waiting helpers. Not part of the installed package."""

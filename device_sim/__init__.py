"""ems-sim: fleets of simulated meters for field engineers."""

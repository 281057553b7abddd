"""Test and benchmark helpers: fault-injecting servers on loopback (never used in production)."""

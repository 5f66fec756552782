"""Test helpers shared by surge's test suites (misbehaving servers, ...)."""

"""The loopback guard for the test run (see ``loopback_guard``)."""

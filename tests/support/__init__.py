"""Helpers the test modules share: scenario builders and assertions (scenarios), and the harness of
the fast-against-reference agreement tests (agreement)."""

"""Opstrace instance components."""

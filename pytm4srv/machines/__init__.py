"""Machines: only as far as holds need them."""

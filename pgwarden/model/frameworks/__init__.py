"""The compliance frameworks rules map to: each one's controls, shipped as package data."""

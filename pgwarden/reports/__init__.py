"""Renderers: each format is a pure function of the Results document."""

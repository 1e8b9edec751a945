"""Helpers: terminal output and logging."""

"""Edges: the HTTP API and the command line."""

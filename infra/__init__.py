"""Adapters. Only the composition root (interfaces/bootstrap.py) imports this package."""

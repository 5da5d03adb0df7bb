"""Agentry domain: aggregates, their past-tense events, value objects and errors. No I/O."""

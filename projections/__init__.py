"""Read models and the projections that fill them from the event store."""

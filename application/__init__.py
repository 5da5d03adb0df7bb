"""Use cases. One service per bounded context; the ports they need are Protocols here."""

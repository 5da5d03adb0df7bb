"""List prices, in US dollars per million tokens, by model-name prefix (the longest matching
prefix wins). Cache reads cost 0.1× and cache writes 1.25× the input price. A model not
listed has no list price: with a budget set, such a session stops with ``budget_reached``.

Prices as published by the providers in 2026; edit this table to match your contracts."""

from __future__ import annotations

from application.ports import ModelUsage

# prefix → (input, output) USD per million tokens
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4-7": (5.0, 25.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4": (1.0, 5.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "o3": (2.0, 8.0),
    "o4-mini": (1.1, 4.4),
}


def price_of(model: str) -> tuple[float, float] | None:
    name = model.rsplit("/", 1)[-1]
    matches = [prefix for prefix in PRICES if name.startswith(prefix)]
    return PRICES[max(matches, key=len)] if matches else None


def cost_micros(model: str, usage: ModelUsage) -> tuple[int, bool]:
    """``(cost in micro-USD, priced)`` of one request at list price."""
    price = price_of(model)
    if price is None:
        return 0, False
    input_price, output_price = price
    # USD per million tokens × tokens = micro-USD.
    cost = (
        usage.input_tokens * input_price
        + usage.output_tokens * output_price
        + usage.cache_read_input_tokens * input_price * 0.1
        + usage.cache_creation_input_tokens * input_price * 1.25
    )
    return round(cost), True

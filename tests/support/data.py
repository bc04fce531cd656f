"""Valid request bodies' parts, built in one place."""

from __future__ import annotations

# The order line the integration and reliability tiers send.
ITEMS = [{"itemId": "sku-1", "quantity": 1, "price": 3.0}]


def address(**changes: str) -> dict[str, str]:
    """A valid delivery address (a fresh dict each call), with `changes` applied."""
    return {
        "street": "1 Main St",
        "city": "Springfield",
        "state": "CA",
        "postalCode": "90210",
        "country": "US",
        **changes,
    }


ADDRESS = address()

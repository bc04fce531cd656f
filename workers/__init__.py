"""Nameko services (users_v1, users_v2, orders) and their data layer."""

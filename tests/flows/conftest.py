"""Flows run in-process against one Prefect test API (`prefect_api`, tests/conftest.py)."""

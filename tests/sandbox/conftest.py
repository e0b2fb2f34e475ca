"""The sandbox tests use the session sandbox and sink from tests/conftest.py."""

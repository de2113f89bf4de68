"""The sandbox fixtures (tests/sandbox/conftest.py) for the spec tests."""

from tests.sandbox.conftest import make_sandbox, sb

__all__ = ["make_sandbox", "sb"]

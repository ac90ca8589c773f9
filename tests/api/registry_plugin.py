"""A problem module outside the library, for tests/api/test_registry.py: importing it registers one problem."""

from invdesign.registry import register
from invdesign.testing.toy_problems import Quadratic


@register("test/module_plugin")
def module_plugin(dim: int = 2) -> Quadratic:
    """A quadratic registered by an entry point naming this module."""
    return Quadratic(dim=dim)

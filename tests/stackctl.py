"""Test-side name for the stack launcher (stack/launcher.py)."""

from stack.launcher import ACCOUNT_ID, REGION, Stack, free_port, make_stack, remove

__all__ = ["ACCOUNT_ID", "REGION", "Stack", "free_port", "make_stack", "remove"]

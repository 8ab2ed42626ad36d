"""dropout-auditor: a linter and runtime auditor for dropout in ML training setups.

The package root stays import-light on purpose: a pre-commit hook pays for every import on
every commit, so heavy modules (rich, pydantic, torch) are imported only by the code paths
that need them.
"""

__version__ = "0.1.0"

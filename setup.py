"""Ships the top-level rules/ catalogue inside the wheel as auditor/rules/, compiled.

The agreed layout keeps rules/ at the repository root (people browse it there), while an
installed package must carry them; this build step copies them in, so there is one copy
in the repository and one in the wheel. It also writes `auditor/_catalogue.json`, the
parsed catalogue, so that no run ever composes the built-in YAML: a per-run cache cannot
be relied on, since it is never written under PYTHONDONTWRITEBYTECODE, in a read-only
site-packages, or before the first run of a fresh CI job. An editable install gets the
compiled copy in the source tree (setuptools runs build_py with editable_mode there); it
is checked against the rule files' bytes on every load, so editing a rule is never stale.
"""

import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _catalogue():
    sys.path.insert(0, HERE)
    try:
        from auditor.core import catalogue
    finally:
        sys.path.pop(0)
    return catalogue


class BuildWithRules(build_py):
    def run(self):
        super().run()
        rules = os.path.join(HERE, "rules")
        if self.editable_mode:
            _catalogue().write_compiled(rules, os.path.join(HERE, "auditor", "_catalogue.json"))
            return
        target = os.path.join(self.build_lib, "auditor", "rules")
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(rules)):
            if name.endswith((".yaml", ".yml")):
                shutil.copy2(os.path.join(rules, name), os.path.join(target, name))
        _catalogue().write_compiled(target, os.path.join(self.build_lib, "auditor", "_catalogue.json"))


setup(cmdclass={"build_py": BuildWithRules})

"""Ships the top-level rules/ catalogue inside the wheel as auditor/rules/.

The agreed layout keeps rules/ at the repository root (people browse it there), while an
installed package must carry them; this build step copies them in, so there is one copy
in the repository and one in the wheel.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithRules(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        target = os.path.join(self.build_lib, "auditor", "rules")
        os.makedirs(target, exist_ok=True)
        for name in sorted(os.listdir(os.path.join(here, "rules"))):
            if name.endswith((".yaml", ".yml")):
                shutil.copy2(os.path.join(here, "rules", name), os.path.join(target, name))


setup(cmdclass={"build_py": BuildWithRules})

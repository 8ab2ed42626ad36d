"""`python -m auditor` is the same program as the `dropout-audit` console script."""

import sys

from auditor.cli.launch import main

if __name__ == "__main__":
    sys.exit(main())

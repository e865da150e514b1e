"""`python -m paymend.cli`: the same as the `paymend` command."""

import sys

from paymend.cli import main

sys.exit(main())

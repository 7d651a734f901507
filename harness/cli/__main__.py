"""`python -m evalboard.cli`: the same as the `evalboard` command."""

import sys

from evalboard.cli import main

sys.exit(main())

import sys

from modeltap.cli import main

sys.exit(main())

import sys

from ali.cli import main

sys.exit(main())

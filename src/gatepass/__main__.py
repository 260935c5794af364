import sys

from gatepass.cli.main import main

sys.exit(main())

"""Run the `oxanus-sync` command line as `python -m oxanus_sync worker APP ...`."""

import sys

from oxanus_sync.cli import main

if __name__ == "__main__":
    sys.exit(main())

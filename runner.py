#!/usr/bin/env python3
"""gpubox's command line for data scientists: `python runner.py --help`."""

import sys

from gpubox.cli import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""ARM golden test from the command line: see ltc_edge/runtime/arm/__init__.py."""
from ltc_edge.runtime.arm import main

if __name__ == "__main__":
    main()

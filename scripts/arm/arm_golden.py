#!/usr/bin/env python
"""ARM golden test from the command line: see ltc_edge/bench/arm/__init__.py."""
from ltc_edge.bench.arm import main

if __name__ == "__main__":
    main()

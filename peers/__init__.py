"""Real peers for tests, the demo and the benchmarks: Orthanc, gateway processes, studies.

Each peer runs as its own process on 127.0.0.1 with its own configuration and storage in a
folder the caller owns, and is stopped by leaving its context manager. Nothing here is part
of the product; it is the harness that proves it.
"""

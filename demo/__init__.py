"""``make demo``: a real cross-community retrieval, end to end, on this machine."""

"""The local AWS: one gateway in front of a backend, with engines for the data plane."""

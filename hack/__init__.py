"""Developer tooling: building the upstream programs and running ARC's local control plane."""

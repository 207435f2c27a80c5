"""Simulation studies of the method itself: the coverage of the estimates against the
generator's known truth, and the power of a planned study. They drive the generator, ingest and
the models together, so they sit above all three."""

"""Class-incremental learning methods on the intsim engine."""

"""Models built on the intsim engine: ResNet-32 and fully connected nets."""

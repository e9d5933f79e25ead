"""Benchmark protocols (ETT, NAB, synthetic labels). The app never imports this package."""

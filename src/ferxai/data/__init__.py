"""Datasets: the synthetic generator, adapters for real formats, the manifest, splits, torch Datasets."""

"""Scores of explanations: per-image metrics (localisation against ground-truth masks, complexity,
later faithfulness and sanity checks), their catalog, and means with bootstrap intervals."""

"""Figures for every stage; each function returns or saves a matplotlib figure and knows no files beyond the path it is given."""

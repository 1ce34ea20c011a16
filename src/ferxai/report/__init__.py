"""The report's own items (Snakemake's ``--report``): what the other stages leave as tables or
logs, drawn or written as a page a person reads. ``data``: class counts per split, a sample grid
per class and the data findings; ``experiment``: per-class scores, training settings and the
status of every explanation method; ``facts``: config, packages, device, wall time per rule and
git commit of the run. ``html`` holds the small page helpers they share."""

"""Rule plot_confusion_matrix: counts and row-normalised confusion matrices."""

import pandas as pd

from ferxai.plots.evaluation import plot_confusion_matrix, save_figure
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    cm = pd.read_csv(snakemake.input[0], index_col=0)
    classes = list(cm.columns)
    save_figure(plot_confusion_matrix(cm.to_numpy(), classes, normalize=False), snakemake.output.counts)
    save_figure(plot_confusion_matrix(cm.to_numpy(), classes, normalize=True), snakemake.output.normalized)

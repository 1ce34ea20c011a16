"""Rule plot_training_curves: one figure per logged quantity, best epoch marked."""

from ferxai.plots.evaluation import plot_training_curves, read_train_log, save_figure
from ferxai.runlog import log_to_file

with log_to_file(snakemake.log[0]):
    records = read_train_log(snakemake.input[0])
    for key, path in snakemake.output.items():
        save_figure(plot_training_curves(records, key), path)

"""The train pipeline behind ``separate train``, entry point included.

    >>> from separate.training import train
    >>> summary = train("examples/recipes/tiny.toml", ["train.epochs=3"], out="runs/tiny")

* :mod:`.run`: :func:`train`, :func:`check_recipe`, :func:`resolve_recipe` (the entry point) and the run
  folder's checks;
* :mod:`.recipe`: TOML recipes and ``--set`` overrides resolved to a checked dict;
* :mod:`.components`: the model, loss module and initial weights a recipe describes;
* :mod:`.data`: datasets, the epoch sampler and loaders of a run;
* :mod:`.objective`: model + loss as one module, the validation SI-SNRi;
* :mod:`.loop`: :class:`Trainer` (epochs, validation, saving), the progress :class:`Reporter`;
* :mod:`.schedules`: learning-rate schedules and early stopping;
* :mod:`.state`: training states on disk (no pickle), RNG capture;
* :mod:`.distributed`: DDP process groups under torchrun.
"""

from separate.training.loop import Reporter, TrainingDiverged
from separate.training.run import check_recipe, resolve_recipe, train

__all__ = ["Reporter", "TrainingDiverged", "check_recipe", "resolve_recipe", "train"]

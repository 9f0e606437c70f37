"""The train pipeline behind ``separate train``, entry point included.

    >>> from separate.training import train
    >>> summary = train("examples/recipes/tiny.toml", ["train.epochs=3"], out="runs/tiny")

* :mod:`.run`: :func:`train`, :func:`check_recipe`, :func:`resolve_recipe` (the entry point) and the run
  folder's checks;
* :mod:`.recipe`: TOML recipes and ``--set`` overrides resolved to a checked dict;
* :mod:`.components`: the model, loss module and initial weights a recipe describes;
* :mod:`.data`: datasets, the epoch sampler and loaders of a run;
* :mod:`.objective`: model + loss as one module, the validation SI-SNRi;
* :mod:`.loop`: :class:`Trainer` (epochs, validation, saving);
* :mod:`.progress`: the progress :class:`Reporter` and the progress records of ``log.jsonl``;
* :mod:`.interrupt`: SIGINT/SIGTERM save the state and stop the run (:class:`TrainingInterrupted`);
* :mod:`.export`: release checkpoints of a run (``model.safetensors``, :func:`export_run`);
* :mod:`.schedules`: learning-rate schedules and early stopping;
* :mod:`.state`: training states on disk (no pickle), RNG capture, the run folder's paths;
* :mod:`.distributed`: DDP process groups under torchrun.
"""

from separate.training.export import export_run
from separate.training.interrupt import TrainingInterrupted
from separate.training.loop import TrainingDiverged
from separate.training.progress import Reporter
from separate.training.run import check_recipe, resolve_recipe, train

__all__ = [
    "Reporter",
    "TrainingDiverged",
    "TrainingInterrupted",
    "check_recipe",
    "export_run",
    "resolve_recipe",
    "train",
]

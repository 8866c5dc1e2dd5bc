"""What a model may make this machine allocate beyond its weights: one cap for sampling, one budget for training.

Each model kind states its own needs (``sampling_bytes(config)``, ``train_bytes_per_sample(config)``); a config
that needs more than the cap is refused when the model is built or its checkpoint is read, before any allocation.
"""
from __future__ import annotations

SAMPLING_MEMORY_CAP = 512 * 2**20  # working memory of sampling, beyond the weights: 29x the shipped V3's (18 MiB), 8x V4's
# (63 MiB); V1-V3 at the Train tab's largest shape (context 84, K 256) need 308 MiB
TRAINING_MEMORY_BUDGET = 3 * 10**9  # a training batch's activations and their gradients: a 16 GB Space trains one
# run beside a class sampling; V4 (50 MB an image) then takes at most 60 images a step, the MLPs 87,000 pairs


def check_sampling_memory(cls, config) -> None:
    """A ValueError unless ``cls(config)`` samples within ``SAMPLING_MEMORY_CAP``."""
    need = cls.sampling_bytes(config)
    if need > SAMPLING_MEMORY_CAP:
        raise ValueError(f"this {cls.name} config needs {need / 2**20:,.0f} MiB of working memory to sample "
                         f"({cls.sampling_memory_terms}); the cap is {SAMPLING_MEMORY_CAP / 2**20:,.0f} MiB")


def max_batch_size(cls, config) -> int:
    """The largest training batch (in the model's ``batch_unit``) within ``TRAINING_MEMORY_BUDGET``."""
    return max(1, TRAINING_MEMORY_BUDGET // cls.train_bytes_per_sample(config))


def check_batch_size(cls, config, batch_size: int) -> int:
    """``batch_size`` if ``cls(config)`` trains on it within ``TRAINING_MEMORY_BUDGET``, else a ValueError naming the field."""
    most = max_batch_size(cls, config)
    if batch_size > most:
        what = "images" if cls.batch_unit == "images" else "(image, pixel) pairs"
        raise ValueError(f"batch size must be at most {most:,} {what} for this {cls.name} (about "
                         f"{cls.train_bytes_per_sample(config) / 1e6:,.2g} MB each in training; the budget is "
                         f"{TRAINING_MEMORY_BUDGET / 1e9:g} GB), got {batch_size:,}")
    return batch_size

"""pixelar: generate images one pixel at a time with small MLPs (after "Generating Pixels One by One") and a PixelCNN.

The Python API in one screen::

    import pixelar
    model = pixelar.load_checkpoint("checkpoints/v3.safetensors")
    trace = pixelar.sample(model, 16, labels=7, temperature=1.0, seed=0)   # precision="auto": bf16 where native
    trace.tokens        # (16, 784) chosen intensity bins, raster order
    trace.entropy       # (16, 784) bits, per step
    pixelar.influence(model, trace.tokens[0], 7, step=300)   # (28, 28) where step 300 looked
    pixelar.evaluate(model, pixelar.load_dataset("mnist-5k"))   # held-out bits per pixel
    pixelar.score(model, grey_levels, label=7)  # per-pixel bits of one real image (784 uint8 grey levels)
    pixelar.classify(model, images)             # (N, classes) log p(class | image): read by Bayes' rule

    model = pixelar.build_model("v3")     # any of pixelar.MODELS: each a pixelar.PixelModel (pixelar/interface.py)
    pixelar.train(model, pixelar.load_dataset("mnist-5k"), pixelar.TrainConfig(steps=500))
    pixelar.save_checkpoint(model, "my-v3.safetensors", dataset="mnist-5k")
"""
from .checkpoints import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from .data import DataUnavailable, Dataset, Split, dequantize, load_dataset, quantize
from .device import pick_device
from .evaluation import evaluate, nll_map, pixel_nll_bits
from .experiments import score
from .influence import influence
from .interface import MODELS, PixelModel, register
from .models import build_model, count_parameters  # registers V1-V3
from .pixelcnn import GatedPixelCNN  # noqa: F401  registers V4 (a new model's file is imported here too)
from .reading import classify, prepare_drawing, read_picture
from .sampling import Request, Trace, sample, sample_many
from .training import TrainConfig, TrainEvent, TrainResult, train

__all__ = [
    "CheckpointError", "DataUnavailable", "Dataset", "MODELS", "PixelModel", "Request", "Split", "Trace", "TrainConfig", "TrainEvent",
    "TrainResult", "build_model", "classify", "count_parameters", "dequantize", "evaluate", "influence", "load_checkpoint", "load_dataset",
    "nll_map", "pick_device", "pixel_nll_bits", "prepare_drawing", "quantize", "read_metadata", "read_picture", "register", "sample", "sample_many", "save_checkpoint", "score", "train",
]

"""``python -m pixelar``: list models, train, sample and evaluate from the command line."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from . import checkpoints, data, fidelity, models, reading, render
from .device import PRECISIONS, TRAINING_PRECISIONS, pick_device
from .evaluation import evaluate
from .inputs import number, whole_number
from .interface import MODELS, settings
from .memory import check_batch_size
from .sampling import MAX_SAMPLES, SEED_MAX, sample
from .training import LR_SCHEDULES, TrainConfig, TrainEvent, train


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (and the exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def whole(name: str, low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``; anything else is one line naming the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # "1.5", "x", or more digits than Python reads
            value = text
        try:
            return whole_number(value, name, low, high)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def real(name: str, low: float, high: float, above_low: bool = False):
    """An argparse type: a number from ``low`` (or above it) to ``high``; "nan", "inf" and "x" are one line."""
    def parse(text: str) -> float:
        try:
            return number(text, name, low, high, above_low=above_low)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


TRAIN_SEED, SAMPLE_SEED = whole("seed", 0, 2**63 - 1), whole("seed", 0, SEED_MAX)


def shape_settings() -> dict[str, list]:
    """Every model setting the CLI offers as a flag, with the models that have it: ``{"k": [(name, field), ...]}``."""
    found: dict[str, list] = {}
    for cls in MODELS.values():
        for name, field in settings(cls.config_class).items():
            if field.metadata["flag"]:
                found.setdefault(name, []).append((cls.name, field))
    return found


def add_shape_flags(group) -> None:
    """``--k``, ``--hidden``, ``--channels``...: one flag per setting of the registered models, its range, its
    models and their defaults read from their configs."""
    for name, owners in shape_settings().items():
        label = owners[0][1].metadata["label"]
        low = min(f.metadata["range"][0] for _, f in owners)
        high = max(f.metadata["range"][1] for _, f in owners)
        kind = whole(label, low, high) if isinstance(owners[0][1].default, int) else real(label, low, high)
        by_default: dict = {}
        for model, field in owners:
            by_default.setdefault(field.default, []).append(model)
        defaults = "; ".join(f"{d:g}" + ("" if len(by_default) == 1 else f" for {', '.join(m)}") for d, m in by_default.items())
        which = "" if len(owners) == len(MODELS) else f"{', '.join(m for m, _ in owners)}: "
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None,
                           help=f"{which}{label}, {low:g} to {high:g} (default {defaults})")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, data.DataUnavailable, checkpoints.CheckpointError, OSError) as error:
        print(f"pixelar {args.command}: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> Parser:
    parser = Parser(prog="python -m pixelar", description="Autoregressive pixel-by-pixel image generation with MLPs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("models", help="list the models and their parameter counts")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("train", help="train a model and save a checkpoint")
    p.add_argument("--model", choices=list(MODELS), default="v3", help="which model (default v3)")
    p.add_argument("--dataset", choices=data.DATASET_NAMES, default="mnist-5k", help="data set (default mnist-5k, offline)")
    p.add_argument("--data-root", default=str(data.DEFAULT_ROOT), help="where downloaded data sets live (default data/)")
    p.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    g = p.add_argument_group("budget")
    g.add_argument("--steps", type=whole("steps", 1, 10**9), default=2000, help="optimiser steps (default 2000)")
    g.add_argument("--batch-size", type=whole("batch size", 1, 65536), default=None,
                   help="(image, pixel) pairs per step for v1-v3 (default 512, the seed's); whole images for v4 (default 32); "
                        "at most what fits a 3 GB training budget (v4: 60 images)")
    g.add_argument("--minutes", type=real("minutes", 0, 10**6, above_low=True), default=None, help="also stop after this many minutes; the schedule follows the time used (default: no limit)")
    g.add_argument("--lr", type=real("learning rate", 0, 1, above_low=True), default=None, help="learning rate (default: the seed's, 1e-3)")
    g.add_argument("--weight-decay", type=real("weight decay", 0, 10**6), default=None, help="AdamW weight decay (default: the seed's for the model)")
    g.add_argument("--schedule", choices=LR_SCHEDULES, default="constant", help="learning-rate schedule (default constant, the seed's)")
    g = p.add_argument_group("model shape (defaults: the model's own)")
    add_shape_flags(g)
    g = p.add_argument_group("run")
    g.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, mps")
    g.add_argument("--precision", choices=TRAINING_PRECISIONS, default="auto", help="auto (bf16 autocast where native), fp32, bf16 (default auto)")
    g.add_argument("--seed", type=TRAIN_SEED, default=0, help="random seed (default 0)")
    g.add_argument("--eval-every", type=whole("steps between checks", 0, 10**9), default=500, help="steps between held-out checks (default 500)")
    g.add_argument("--eval-images", type=whole("images per check", 1, 10**9), default=50, help="held-out images per check (default 50)")
    g.add_argument("--final-eval-images", type=whole("final held-out images", 1, 10**9), default=None, help="held-out images for the NLL stored in the checkpoint, spread over the classes (default all)")
    g.add_argument("--save-every", type=whole("steps between saves", 0, 10**9), default=0, help="also save the checkpoint at every held-out check that is a multiple of this many steps (default 0: only at the end)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="generate images from a checkpoint")
    p.add_argument("--checkpoint", required=True, help="checkpoint file")
    p.add_argument("--n", type=whole("number of samples", 1, MAX_SAMPLES), default=16, help="number of images (default 16)")
    p.add_argument("--digit", type=whole("digit", 0, 2**31 - 1), default=None, help="class to generate, 0-9 (class-conditional models; default: cycle)")
    p.add_argument("--temperature", type=real("temperature", 0, 10**6, above_low=True), default=1.0, help="sampling temperature, > 0 (default 1.0)")
    p.add_argument("--seed", type=SAMPLE_SEED, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="samples.png", help="grid picture to write (default samples.png)")
    p.add_argument("--columns", type=whole("columns", 1, MAX_SAMPLES), default=None, help="grid columns (default: square)")
    p.add_argument("--scale", type=whole("scale", 1, 64), default=4, help="screen pixels per image pixel (default 4)")
    p.add_argument("--gif", default=None, help="also write an animated GIF of the first image being drawn")
    p.add_argument("--npy", default=None, help="also write the tokens (n, 784) as a .npy file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.add_argument("--top-k", type=whole("top-k", 1, 256), default=None, help="keep only the k most probable bins at each step (default: all)")
    p.add_argument("--top-p", type=real("top-p", 0, 1, above_low=True), default=None, help="keep the most probable bins up to this total probability, 0-1 (default: all)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="matmul precision: auto (the fastest accurate path here, timed once), fp32, bf16, int8 (v1-v3 on a CPU) (default auto)")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("evaluate", help="held-out negative log-likelihood of a checkpoint, in bits per pixel")
    p.add_argument("--checkpoint", required=True, help="checkpoint file")
    p.add_argument("--dataset", choices=data.DATASET_NAMES, default=None, help="data set (default: the one it was trained on)")
    p.add_argument("--data-root", default=str(data.DEFAULT_ROOT), help="where downloaded data sets live (default data/)")
    p.add_argument("--images", type=whole("images", 1, 10**9), default=None, help="evaluate on N held-out images spread over the classes (default all)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    g = p.add_argument_group("class fidelity (class-conditional models)")
    g.add_argument("--classifier", default=None, help="judge to use (default checkpoints/classifier-<dataset>.safetensors; trained on the spot if missing)")
    g.add_argument("--per-class", type=whole("samples per class", 0, 10**6), default=50, help="samples per class and temperature (default 50; 0 skips fidelity)")
    g.add_argument("--seed", type=SAMPLE_SEED, default=0, help="sampling seed for the fidelity check (default 0)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="matmul precision for NLL and sampling: fp32 (default, exact), bf16, int8 (v1-v3 on a CPU), auto")
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("classify", help="read a digit by Bayes' rule: p(class | image) from a class-conditional model")
    p.add_argument("--checkpoint", required=True, help="checkpoint file of a class-conditional model (v3, v4, ...)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--image", default=None, help="a picture of one digit (PNG, JPEG, ...): made into an MNIST digit, then read")
    g.add_argument("--held-out", type=whole("held-out images", 1, 10**6), default=None, metavar="N",
                   help="read N held-out images spread over the classes and print the accuracy")
    p.add_argument("--dataset", choices=data.DATASET_NAMES, default=None, help="data set for --held-out (default: the one it was trained on)")
    p.add_argument("--data-root", default=str(data.DEFAULT_ROOT), help="where downloaded data sets live (default data/)")
    p.set_defaults(run=cmd_classify)

    p = sub.add_parser("classifier", help="train the small classifier that judges class fidelity")
    p.add_argument("--dataset", choices=data.DATASET_NAMES, default="mnist-5k", help="data set (default mnist-5k)")
    p.add_argument("--data-root", default=str(data.DEFAULT_ROOT), help="where downloaded data sets live (default data/)")
    p.add_argument("--epochs", type=whole("epochs", 1, 10**6), default=12, help="passes over the training split (default 12)")
    p.add_argument("--seed", type=TRAIN_SEED, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="file to write (.safetensors)")
    p.set_defaults(run=cmd_classifier)
    return parser


def cmd_models(args) -> int:
    print(f"{'model':6} {'parameters':>12}  description")
    for name, cls in MODELS.items():
        print(f"{name:6} {models.count_parameters(cls()):>12,}  {cls.description}")
    return 0


def cmd_train(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_file():
        raise ValueError(f"--out {out} is a folder, not a file")
    shape = {name: getattr(args, name) for name in shape_settings()}
    model = models.build_model(args.model, seed=args.seed, **{name: value for name, value in shape.items() if value is not None})
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size or model.default_batch_size, learning_rate=args.lr,
        weight_decay=args.weight_decay, lr_schedule=args.schedule, eval_every=args.eval_every,
        max_seconds=args.minutes * 60 if args.minutes is not None else None,
        eval_images=args.eval_images, seed=args.seed, device=args.device, precision=args.precision,
    )
    config.validate()
    check_batch_size(type(model), model.config, config.batch_size)
    dataset = data.load_dataset(args.dataset, args.data_root)
    print(f"training {args.model} ({models.count_parameters(model):,} parameters) on {dataset.describe()}", file=sys.stderr)
    budget = dict(dataset=dataset.name, class_names=list(dataset.class_names), batch_size=config.batch_size,
                  batch_unit=model.batch_unit, learning_rate=config.learning_rate_for(model),
                  weight_decay=config.weight_decay_for(model), lr_schedule=config.lr_schedule, seed=config.seed, time_budget_seconds=config.max_seconds)

    progress = _progress_bar(config.steps)

    def on_event(event: TrainEvent) -> None:
        progress(event)
        if args.save_every and event.held_out_nll is not None and not event.finished and event.step % args.save_every == 0:
            checkpoints.save_checkpoint(  # so that a killed run leaves its latest weights
                model, out, **budget, steps=event.step, samples_seen=event.samples_seen,
                train_seconds=round(event.elapsed_seconds, 1), device=event.device, partial=True,
                check_nll=round(event.held_out_nll, 4), check_images=config.eval_images,
            )

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C or kill: finish the step, save, exit
        signal.signal(signum, lambda *_: stop.set())
    result = train(model, dataset, config, on_event=on_event, stop=stop)
    if result.steps == 0:
        print("stopped before the first step: nothing to save", file=sys.stderr)
        return 1
    n_eval = min(args.final_eval_images or len(dataset.held_out), len(dataset.held_out))
    held_out = evaluate(model, dataset, n_eval)
    model.metadata = {}  # drop the interim saves' fields
    checkpoints.save_checkpoint(model, out, **checkpoints.run_metadata(model, result, config, dataset, held_out, n_eval))
    state = "stopped early" if result.stopped else "done"
    print(f"{state}: {result.steps} steps in {result.seconds:.0f} s; held-out NLL {held_out:.4f} bits/pixel "
          f"({n_eval} images); saved {out}")
    return 0


def _progress_bar(total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True)

    def on_event(event: TrainEvent) -> None:
        bar.update(event.step - bar.n)
        fields = {"samples/s": f"{event.samples_per_second:,.0f}"}
        if event.loss is not None:
            fields["loss"] = f"{event.loss:.3f}"
        if event.held_out_nll is not None:
            fields["held-out"] = f"{event.held_out_nll:.3f}"
        bar.set_postfix(fields, refresh=True)
        if event.finished:
            bar.close()

    return on_event


def cmd_sample(args) -> int:
    for option in ("out", "gif", "npy"):
        target = getattr(args, option)
        if target and Path(target).parent != Path("") and not Path(target).parent.is_dir():
            raise ValueError(f"--{option} {target}: folder {Path(target).parent} does not exist")
    model = checkpoints.load_checkpoint(args.checkpoint, pick_device(args.device))
    names = model.metadata.get("class_names") or list(data.DIGITS)
    if args.digit is not None and not model.conditional:
        print(f"note: {model.name} is not class-conditional; --digit is ignored", file=sys.stderr)
    if args.digit is not None and model.conditional and not 0 <= args.digit < len(names):
        raise ValueError(f"--digit must be from 0 to {len(names) - 1}, got {args.digit}")
    trace = sample(model, args.n, labels=args.digit, temperature=args.temperature, seed=args.seed,
                   top_k=args.top_k, top_p=args.top_p, precision=args.precision)
    captions = [names[label] for label in trace.labels] if model.conditional else None
    render.sample_grid(trace.images(), args.columns, args.scale, captions).save(args.out)
    written = [args.out]
    if args.gif:
        written.append(str(render.generation_gif(trace, args.gif)))
    if args.npy:
        np.save(args.npy, trace.tokens)
        written.append(args.npy)
    print(f"{args.n} samples from {model.name} (temperature {trace.temperature}, seed {trace.seed}): {', '.join(written)}")
    return 0


def cmd_evaluate(args) -> int:
    model = checkpoints.load_checkpoint(args.checkpoint, pick_device(args.device))
    name = args.dataset or model.metadata.get("dataset", "mnist-5k")
    dataset = data.load_dataset(name, args.data_root)
    n = min(args.images or len(dataset.held_out), len(dataset.held_out))
    nll = evaluate(model, dataset, n, precision=args.precision)
    print(f"{model.name} on {name} held-out ({n} images, {args.precision}): {nll:.4f} bits per pixel")
    if model.conditional and args.per_class > 0:
        judge = _classifier_for(dataset, args.classifier)
        result = fidelity.class_fidelity(model, judge, per_class=args.per_class, seed=args.seed, precision=args.precision)
        print(f"class fidelity ({args.per_class} samples per class and temperature, seed {args.seed}; judged by a "
              f"classifier with {result.classifier_accuracy:.1%} held-out accuracy):")
        print(result.table(dataset.class_names))
    return 0


def _classifier_for(dataset: data.Dataset, path: str | None):
    default = Path("checkpoints") / f"classifier-{dataset.name}.safetensors"
    if path or default.exists():
        return fidelity.load_classifier(path or default)
    print(f"no {default}: training a classifier on {dataset.name} first (about a minute)", file=sys.stderr)
    return fidelity.train_classifier(dataset)


def cmd_classify(args) -> int:
    model = checkpoints.load_checkpoint(args.checkpoint)
    names = model.metadata.get("class_names") or list(data.DIGITS)
    if args.image is not None:
        posterior = reading.classify(model, reading.prepare_drawing(reading.read_picture(args.image))[None])[0].exp()
        print(f"p(class | image) under {model.name}, uniform prior:")
        for label in posterior.argsort(descending=True).tolist():
            print(f"{names[label]:>12}  {posterior[label].item():7.2%}")
        return 0
    dataset = data.load_dataset(args.dataset or model.metadata.get("dataset", "mnist-5k"), args.data_root)
    split = dataset.held_out.subset(whole_number(args.held_out, "--held-out", 1, len(dataset.held_out)))
    guesses = reading.classify(model, split.images).argmax(1)
    accuracy = (guesses == split.labels).double().mean().item()
    print(f"{model.name} read by Bayes' rule on {dataset.name} held-out ({len(split)} images): {accuracy:.1%} right")
    return 0


def cmd_classifier(args) -> int:
    dataset = data.load_dataset(args.dataset, args.data_root)
    judge = fidelity.train_classifier(dataset, epochs=args.epochs, seed=args.seed)
    fidelity.save_classifier(judge, args.out)
    print(f"classifier for {dataset.name}: {judge.metadata['held_out_accuracy']:.1%} held-out accuracy "
          f"({judge.metadata['held_out_images']} images); saved {args.out}")
    return 0

"""Train the digit CNN, evaluate it and export it for the reader.

    python train.py --data ../shared/data/mnist.npz --usps ../shared/data/usps.npz
    python train.py --evaluate models/digits.keras --data ../shared/data/mnist.npz
    python train.py --export-int8 models/digits.keras --data ../shared/data/mnist.npz   # OpenVINO's export
    python train.py --finetune labels/ --data ../shared/data/mnist.npz   # adapt to your hand
    python train.py --pairs --data ../shared/data/mnist.npz             # the touching-pair network (video frames)
    python train.py --photo-pairs --data ../shared/data/mnist.npz       # its deeper twin, for still photos
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from digitrec.classify import ModelFileError
from digitrec.cli_help import DefaultsHelpFormatter, count, epochs, seed
from digitrec.data import MNIST_ENV, USPS_ENV, DataFileError
from digitrec.labels import LabelFolderError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the handwritten-digit CNN on MNIST (plus USPS and camera-style "
        "augmentation), export it to LiteRT, and write metrics and plots.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--data", help=f"path to mnist.npz (default: ${MNIST_ENV}; without either, Keras's own download of "
                        "MNIST, fetched once into ~/.keras/datasets: it needs the internet)")
    parser.add_argument("--usps", help=f"path to usps.npz: extra writers for training, and a second test (default: ${USPS_ENV})")
    parser.add_argument("--out", help="training: folder for the model, its .tflite export, metrics.json and plots "
                        "(default: models); --finetune: the fine-tuned .keras file (default: beside --model, "
                        "as <name>-finetuned.keras; never the input model)")
    parser.add_argument("--name", help="file name of the model, without extension (default: digits; pairs with "
                        "--pairs, pairs_photo with --photo-pairs)")
    parser.add_argument("--epochs", type=epochs, help="training epochs (default: 16; 2 with --quick)")
    parser.add_argument("--seed", type=seed, default=1,
                        help="seed of the initial weights, shuffling and jitter, and of the training set unless --data-seed")
    parser.add_argument("--data-seed", type=seed,
                        help="seed of the assembled training set alone (held-out digits, renderings, pages), "
                        "so several trainings can share one set; None: --seed")
    parser.add_argument("--blocks", help="filters of the five convolution blocks, comma-separated "
                        "(default: 32,32,64,64,128; the strides stay 1,2,1,2,1)")
    parser.add_argument("--teacher", metavar="MODEL",
                        help="learn from this trained model's probabilities as well as the labels (knowledge "
                        "distillation; e.g. a smaller --blocks network taught by the shipped model)")
    parser.add_argument("--prune-from", metavar="MODEL",
                        help="start from this trained .keras model cut down to --blocks' filters (the filters that "
                        "matter most kept, the next layer refitted; digitrec/prune.py), not from fresh weights: with "
                        "--teacher the same model, a faster network that reads nearly as it does")
    parser.add_argument("--continue-from", metavar="MODEL",
                        help="go on training this trained .keras digit model (its network and weights) for --epochs "
                        "more at a tenth of the learning rate, on the training set of --data-seed (which it needs: "
                        "the one the model was trained on), e.g. with --printed-digits")
    parser.add_argument("--printed-digits", type=count, default=0, metavar="N",
                        help="add N digits printed in OpenCV's fonts to the training set, 30 %% of them camera-styled "
                        "too, and N/2 printed letters and signs as not-a-digit (a '1' with a flag and a foot, a "
                        "narrow '0'; default: 0)")
    parser.add_argument("--flag-ones", type=float, default=0.0, metavar="FRACTION",
                        help="draw the flag many hands write on this fraction of the near-upright training "
                        "'1's (MNIST and USPS have few; default: 0)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (3000 digits, 2 epochs) that checks the whole pipeline")
    parser.add_argument("--pairs", action="store_true",
                        help="train the pair network instead, which reads a blob of two touching digits whole "
                        "(pairs.keras, pairs.tflite, pairs_metrics.json; 12 epochs, ~57 min; uses --data, --epochs, "
                        "--seed, --data-seed, --quick, --out, --name)")
    parser.add_argument("--photo-pairs", action="store_true",
                        help="train the still photos' pair network instead: the pair network with one more "
                        "128-filter block (pairs_photo.keras, .tflite and _metrics.json; 12 epochs, ~60 min; the "
                        "same options as --pairs)")
    parser.add_argument("--evaluate", metavar="MODEL", help="only measure this saved .keras or .tflite model")
    parser.add_argument("--export-int8", metavar="MODEL",
                        help="only write this saved .keras model's OpenVINO export beside it: MODEL.int8.tflite, "
                        "8-bit activations as well as weights, calibrated on MNIST training digits from --data "
                        "(training writes it already; its .tflite, which LiteRT reads, is left as it is)")
    parser.add_argument("--finetune", metavar="DIR",
                        help="adapt --model to your handwriting from the crops labelled in the window (key l) "
                        "in DIR; reports accuracy on your held-out crops, and on MNIST test, before and after")
    parser.add_argument("--model", help="the .keras model that --finetune starts from (default: models/digits.keras)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from digitrec.prune import model_blocks
    from digitrec.training import (
        QUICK_CONFIG,
        TrainingConfig,
        evaluate_saved_model,
        load_model_to_continue,
        load_teacher,
        run_training,
    )

    try:
        if args.evaluate:
            if not Path(args.evaluate).is_file():
                raise ModelFileError(f"{args.evaluate}: no such model file. Pass --evaluate PATH to a .keras or "
                                     ".tflite file.")
            metrics = evaluate_saved_model(args.evaluate, args.data, args.usps)
            metrics.pop("mnist_test_confusion")
            print(json.dumps(metrics, indent=2))
            return 0
        if args.export_int8:
            from digitrec.training import export_int8_of_saved_model

            print(json.dumps(export_int8_of_saved_model(args.export_int8, args.data), indent=2))
            return 0
        if args.finetune:
            return finetune(args)
        if args.pairs or args.photo_pairs:
            return train_pairs(args)
        config = QUICK_CONFIG if args.quick else TrainingConfig()
        config = replace(config, seed=args.seed, data_seed=args.data_seed)
        if args.epochs is not None:
            config = replace(config, epochs=args.epochs)
        if args.blocks:
            config = replace(config, conv_blocks=parse_blocks(args.blocks, config.conv_blocks))
        if not 0.0 <= args.flag_ones <= 1.0:
            raise ValueError(f"--flag-ones is a fraction from 0 to 1, not {args.flag_ones}")
        config = replace(config, flag_ones=args.flag_ones)
        if args.teacher:
            load_teacher(args.teacher)  # refused now, not after the training set's assembly
            config = replace(config, teacher=args.teacher)
        if args.continue_from:
            if args.prune_from or args.blocks:
                raise ValueError("--continue-from goes on training the model's own network: leave out --prune-from "
                                 "and --blocks")
            if args.data_seed is None:
                raise ValueError("--continue-from needs --data-seed: the one the model was trained on (data_seed in "
                                 "its metrics.json; 2 for models/digits.keras), so that the digits it held out stay "
                                 "held out")
            # Refused now, not after the training set's assembly; its blocks are recorded as the network trained.
            blocks = model_blocks(load_model_to_continue(args.continue_from))
            config = replace(config, continue_from=args.continue_from, conv_blocks=blocks)
        if args.prune_from:
            check_pruning(args.prune_from, args.blocks, config.conv_blocks)
            config = replace(config, prune_from=args.prune_from)
        config = replace(config, printed_digits=args.printed_digits)
        make_out_folder(args.out or "models")
        metrics = run_training(args.data, args.usps, args.out or "models", config, model_name=args.name or "digits")
    except (DataFileError, ModelFileError, LabelFolderError, ValueError) as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    summary = {key: metrics[key] for key in ("mnist_test_accuracy", "usps_test_accuracy", "camera_style_mnist_test_accuracy",
                                              "not_a_digit_marks_rejected", "tflite_same_reading",
                                              "parameters", "training_seconds") if key in metrics}
    print(json.dumps(summary, indent=2))
    name = args.name or "digits"
    print(f"wrote {args.out or 'models'}/{name}.keras, {name}.tflite, {name}.int8.tflite, metrics.json and plots")
    return 0


def make_out_folder(path: str) -> None:
    """--out for training: made now, or refused now, not after the training's minutes."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"--out {path} is a file; training writes a folder of files. Pass a folder.") from None
    except OSError as error:
        raise ValueError(f"--out {path}: the folder cannot be made ({error.strerror}).") from None


def parse_blocks(text: str, default: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """'16,32,32,64,128' -> ((16, 1), (32, 2), ...): the filters given, the default network's strides."""
    try:
        filters = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--blocks takes {len(default)} whole numbers separated by commas, not {text!r}") from None
    if len(filters) != len(default) or min(filters) < 1:
        raise ValueError(f"--blocks takes {len(default)} filter counts of 1 or more, e.g. 16,32,32,64,128; got {text!r}")
    return tuple((count, stride) for count, (_, stride) in zip(filters, default))


def check_pruning(model_path: str, blocks_given: str | None, blocks: tuple[tuple[int, int], ...]) -> None:
    """--prune-from: refused now (not after the training set's assembly) unless the model can be cut to --blocks."""
    from digitrec.prune import check_blocks, load_model_to_prune, model_blocks

    if not blocks_given:
        raise ValueError("--prune-from needs --blocks: the filters to keep in each block, e.g. 16,32,32,64,128")
    check_blocks(model_blocks(load_model_to_prune(model_path)), blocks)


def train_pairs(args: argparse.Namespace) -> int:
    """--pairs, --photo-pairs: train the pair network (or the photos' one) and print its held-out figures."""
    from digitrec.model import PAIR_BLOCKS, PHOTO_PAIR_BLOCKS
    from digitrec.pair_training import QUICK_PAIR_CONFIG, PairTrainingConfig, run_pair_training

    if args.pairs and args.photo_pairs:
        raise ValueError("--pairs and --photo-pairs train two different networks: give one of them")
    config = QUICK_PAIR_CONFIG if args.quick else PairTrainingConfig()
    config = replace(config, seed=args.seed, data_seed=2 if args.data_seed is None else args.data_seed,
                     blocks=PHOTO_PAIR_BLOCKS if args.photo_pairs else PAIR_BLOCKS)
    if args.epochs is not None:
        config = replace(config, epochs=args.epochs)
    name = args.name or ("pairs_photo" if args.photo_pairs else "pairs")
    make_out_folder(args.out or "models")
    metrics = run_pair_training(args.data, args.out or "models", config, model_name=name)
    print(json.dumps({"held_out": metrics["held_out"], "training_crops": metrics["training_crops"],
                      "training_seconds": metrics["training_seconds"]}, indent=2))
    print(f"wrote {args.out or 'models'}/{name}.keras, {name}.tflite and {name}_metrics.json")
    return 0


def finetune(args: argparse.Namespace) -> int:
    """--finetune: adapt the model to the user's labelled crops and print before/after."""
    from digitrec.finetune import DEFAULT_FINETUNE, run_finetune
    from digitrec.reader import DEFAULT_MODEL

    config = replace(DEFAULT_FINETUNE, seed=args.seed)
    if args.epochs is not None:
        config = replace(config, epochs=args.epochs)
    report = run_finetune(args.finetune, args.model or DEFAULT_MODEL, args.out, args.data, config)
    print(json.dumps(report, indent=2))
    print(f"your held-out crops: {report['held_out_accuracy_before']:.1%} -> {report['held_out_accuracy_after']:.1%} "
          f"({report['user_held_out_crops']} crops); MNIST test: {report['mnist_test_accuracy_before']:.2%} -> "
          f"{report['mnist_test_accuracy_after']:.2%}")
    print(f"wrote {report['model']}, {report['tflite']} and {report['int8_tflite']}; read with it: "
          f"python3 live_digits.py --model {report['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

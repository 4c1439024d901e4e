"""What the command-line tools share: the help formatter (`live_digits.py`, `train.py`), the types of seeds
(`train.py` and the evaluation CLIs) and of epochs (`train.py`), the `--pair-model` and `--photo-pair-model` options
(`live_digits.py`, `digitrec.evaluation`, `digitrec.evaluate_tracking`), and the evaluation CLIs' message when their
reader cannot be loaded."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds each option's default to its help, unless it has none (None, or off for a switch) or the
    help already says it: no '(default: None)', no '(default: False)', no default given twice."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _whole_number(text: str, least: int, what: str) -> int:
    """`text` as a whole number at least `least`, or argparse's error naming the option, instead of a traceback from
    deep in the run."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} a whole number {least} or more, not {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{what} a whole number {least} or more, not {value}")
    return value


def seed(text: str) -> int:
    """An argparse type for seeds: a whole number 0 or more (NumPy takes no other)."""
    return _whole_number(text, 0, "a seed is")


def epochs(text: str) -> int:
    """An argparse type for epoch counts: a whole number 1 or more."""
    return _whole_number(text, 1, "epochs are")


def count(text: str) -> int:
    """An argparse type for how many of something to draw: a whole number 0 or more."""
    return _whole_number(text, 0, "a count is")


PAIR_MODEL_HELP = ("the network that reads two touching digits whole (read unsurely in a video frame, and in a "
                   "photo unless --photo-pair-model), a .keras or .tflite; "
                   "models/pairs.keras when none is given and it is there; 'none': cut them apart only")

PHOTO_PAIR_MODEL_HELP = ("the network that reads two touching digits whole in a still photo, a .keras or .tflite; "
                         "when none is given, models/pairs_photo.keras if it is there and --pair-model is not given, "
                         "else --pair-model's; 'none': photos' touching digits cut apart only")


def add_pair_model_options(parser: argparse.ArgumentParser) -> None:
    """The `--pair-model` and `--photo-pair-model` options (see `pair_models`)."""
    parser.add_argument("--pair-model", default=None, help=PAIR_MODEL_HELP)
    parser.add_argument("--photo-pair-model", default=None, help=PHOTO_PAIR_MODEL_HELP)


def pair_model_option(value: str | None) -> str | None:
    """A `--pair-model` value as the reader takes it: the shipped network's path when not given, None for
    'none' (touching digits read by cuts alone), else the path given."""
    if value is None:
        from digitrec.reader import DEFAULT_PAIR_MODEL

        return str(DEFAULT_PAIR_MODEL)
    return None if value.lower() == "none" else value


def pair_models(args: argparse.Namespace) -> dict[str, str | None]:
    """`--pair-model` and `--photo-pair-model` as the reader's `pair_model` and `photo_pair_model` (a network given
    with `--pair-model` alone reads photos too, so that it is what a run measures: `reader.photo_pair_model_for`)."""
    return {"pair_model": pair_model_option(args.pair_model), "photo_pair_model": args.photo_pair_model}


def reader_load_error(args: argparse.Namespace, error: Exception) -> str:
    """The message of an evaluation CLI that could not load its reader, naming the options that chose its files."""
    return (f"error: could not load the reader (--model {args.model}, --pair-model {args.pair_model or 'default'}, "
            f"--photo-pair-model {args.photo_pair_model or 'default'}): {error}")

"""What the command-line tools share: the help formatter (`live_digits.py`, `train.py`) and the
`--pair-model` option (`live_digits.py`, `digitrec.evaluation`, `digitrec.evaluate_tracking`)."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds each option's default to its help, unless it has none (None, or off for a switch) or the
    help already says it: no '(default: None)', no '(default: False)', no default given twice."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


PAIR_MODEL_HELP = ("the network that reads two touching digits whole (in a photo, or read unsurely in a video "
                   "frame), a .keras or .tflite; "
                   "models/pairs.keras when none is given and it is there; 'none': cut them apart only")


def pair_model_option(value: str | None) -> str | None:
    """A `--pair-model` value as the reader takes it: the shipped network's path when not given, None for
    'none' (touching digits read by cuts alone), else the path given."""
    if value is None:
        from digitrec.reader import DEFAULT_PAIR_MODEL

        return str(DEFAULT_PAIR_MODEL)
    return None if value.lower() == "none" else value


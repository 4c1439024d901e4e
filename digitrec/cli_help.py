"""The help formatter of the command-line tools (`live_digits.py`, `train.py`)."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds each option's default to its help, unless it has none (None, or off for a switch) or the
    help already says it: no '(default: None)', no '(default: False)', no default given twice."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)

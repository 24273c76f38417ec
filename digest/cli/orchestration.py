"""Where the CLI finds the Prefect flows: the one door from the command line into
Prefect (the library below it never imports Prefect).

The flows live in the repository's top-level `flows/` folder, which deployments name
by path (`flows/pipeline.py:poll_feeds`). An installed wheel carries them inside the
package, as `digest.flows`, so that it installs no top-level `flows` that another
project's could overwrite; a checkout (or an editable install) has `flows` itself.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def flows(name: str) -> ModuleType:
    """The flows module `name` ("pipeline", "local", "deployments")."""
    try:
        return importlib.import_module(f"digest.flows.{name}")
    except ModuleNotFoundError as exc:
        if exc.name not in ("digest.flows", f"digest.flows.{name}"):
            raise  # something the flows need is missing: say so, do not hide it
    return importlib.import_module(f"flows.{name}")

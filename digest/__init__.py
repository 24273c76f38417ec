"""podcast-digest: podcasts in, a daily email of the five best insights out.

The package is the library; `flows/` wires its stages into Prefect flows and
`digest.cli` is the command line. Nothing in here imports Prefect.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""imposter: make the subject of one image perform the action of another (ImPoster, arXiv 2409.15650)."""

__version__ = "0.1.0"

from .config import FinetuneConfig, RunConfig, SamplingConfig  # noqa: E402
from .engine import ImPoster, PreparedPair  # noqa: E402
from .errors import ImposterError  # noqa: E402

__all__ = [
    "FinetuneConfig",
    "ImPoster",
    "ImposterError",
    "PreparedPair",
    "RunConfig",
    "SamplingConfig",
    "__version__",
]

"""Subcommand of this package: ``imposter app``.

imposter app                                   # the bundled toy model, on a laptop CPU
imposter app --model stabilityai/stable-diffusion-xl-base-1.0 --port 7860
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import ConfigError
from ..flags import add_model_flags

DEFAULT_OUT = Path("runs/app")


def cmd_app(args: argparse.Namespace) -> None:
    # Gradio reads these when it is imported: uploads go under the app's output folder, no calls home.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(args.out.resolve() / "uploads"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from .layout import launch  # gradio and torch load only when the app starts
    except ModuleNotFoundError as err:
        if err.name != "gradio":
            raise
        raise ConfigError('imposter app needs Gradio: pip install "imposter-diffusion[app]"') from err
    launch(args.model, args.out, args.host, args.port, args.share, device=args.device, dtype=args.dtype)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``app`` to the ``imposter`` parser."""
    app = subparsers.add_parser(
        "app",
        help="the web app: upload a source and a driving image, personalize once, tune live",
        epilog='needs Gradio: pip install "imposter-diffusion[app]"',
    )
    add_model_flags(app)
    app.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine)"
    )
    app.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)")
    app.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    app.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where runs and cached fine-tunes go (default {DEFAULT_OUT})",
    )
    app.set_defaults(func=cmd_app)

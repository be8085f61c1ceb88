"""anonaudit: privacy auditing and attack evaluation for image anonymizers (faces and licence plates).

```python
from anonaudit import Audit, datasets
from anonaudit.anonymizers import GaussianBlur, Pixelate, Mask
from anonaudit.attacks import OCRReread, DeblurThenOCR
from anonaudit.evaluators import SSIM, PSNR
```
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from . import datasets
from .data.imageset import Box, ImageSet, Record, Release
from .results import Results
from .stats import Estimate

if TYPE_CHECKING:
    from .audit import Audit

__all__ = ["Audit", "Box", "Estimate", "ImageSet", "Record", "Release", "Results", "__version__", "datasets"]


def __getattr__(name: str) -> Any:
    """``anonaudit.Audit`` is imported on first use, so importing a part of the package (the results
    table, the reports) never imports the runner."""
    if name == "Audit":
        from .audit import Audit

        return Audit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


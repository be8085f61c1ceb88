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

from .audit import Audit  # noqa: E402
from .data.imageset import Box, ImageSet, Record, Release  # noqa: E402
from .results import Results  # noqa: E402
from .stats import Estimate  # noqa: E402
from . import datasets  # noqa: E402

__all__ = ["Audit", "Box", "Estimate", "ImageSet", "Record", "Release", "Results", "datasets", "__version__"]


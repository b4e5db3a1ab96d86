r"""Files: checkpoints, atomic writes and output locks, and image grids.

- :func:`save_checkpoint` / :func:`load_checkpoint`: a module's configuration and weights in one
  file, written atomically, verified on load.
- :func:`write_atomically`, :class:`OutputLock`: no partial file under a final name, no two
  runs writing the same outputs.
- :func:`image_grid`, :func:`save_image_grid`, :func:`show_images`: samples as pictures (PNG
  with no imaging dependency; matplotlib for notebooks).
"""

from .checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    is_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .files import OutputLock, OutputLockedError, remove_stale_temporaries, write_atomically
from .images import image_grid, save_image_grid, show_images

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "OutputLock",
    "OutputLockedError",
    "image_grid",
    "is_checkpoint",
    "load_checkpoint",
    "remove_stale_temporaries",
    "save_checkpoint",
    "save_image_grid",
    "show_images",
    "write_atomically",
]

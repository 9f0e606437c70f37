"""Write failures as one line: a full disk is named as such, anything else with its reason."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from separate.errors import SeparateError

#: Free space under which a libsndfile "System error" while writing is reported as a full disk.
_NEARLY_FULL = 1 << 20


def write_error(problem: Exception, path: str | os.PathLike[str]) -> SeparateError:
    """A one-line error for a failed write of ``path`` (a full disk is named as such)."""
    if isinstance(problem, OSError) and problem.errno == errno.ENOSPC:
        return SeparateError(f"no space left on device while writing {path}")
    if not isinstance(problem, OSError) and _nearly_full(Path(path).parent):
        return SeparateError(f"no space left on device while writing {path}")
    reason = problem.strerror if isinstance(problem, OSError) and problem.strerror else problem
    return SeparateError(f"cannot write {path}: {' '.join(str(reason).split())}")


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder if folder.exists() else tempfile.gettempdir()).free < _NEARLY_FULL
    except OSError:
        return False

"""The local backend's side files: each object's content type, user metadata, recorded retention and
legal hold, kept out of the recording folders in ``{root}/.recarchive/meta/{key}.json`` (CONTRACT §3:
a recording folder holds exactly its objects). Side files of versions before 0.2 (hidden, beside the
object: ``.{name}.meta.json``) are still read, and moved to the side tree on their next update.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.base import Retention
from worker.errors import StorageError

__all__ = ["PRIVATE", "SideFiles", "retention_from", "sync_dir"]

#: the backend's own hidden tree under the root (side files, temporary files); never a key
PRIVATE = ".recarchive"


class SideFiles:
    """Side files of the objects under ``root``. Not locked here: the backend serialises updates."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync

    def path(self, obj: Path) -> Path:
        """``.recarchive/meta/{key}.json`` for the object at ``obj``."""
        relative = obj.relative_to(self.root)
        return self.root.joinpath(PRIVATE, "meta", *relative.parent.parts, f"{relative.name}.json")

    @staticmethod
    def old_path(obj: Path) -> Path:
        """Where versions before 0.2 kept it: hidden, beside the object."""
        return obj.with_name(f".{obj.name}.meta.json")

    def tmp_dir(self) -> Path:
        """Where objects are written before they are linked into place (same file system)."""
        folder = self.root / PRIVATE / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def read(self, obj: Path) -> dict[str, Any]:
        """The side file of ``obj`` (new place, else the old one), ``{}`` when it has none."""
        try:
            document = json.loads(self.path(obj).read_bytes())
        except FileNotFoundError:
            try:
                document = json.loads(self.old_path(obj).read_bytes())
            except FileNotFoundError:
                return {}
            except (OSError, ValueError) as exc:
                raise StorageError(f"unreadable sidecar of {obj.name}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise StorageError(f"unreadable sidecar of {obj.name}: {exc}") from exc
        if not isinstance(document, dict):
            raise StorageError(f"unreadable sidecar of {obj.name}: not an object")
        return document

    def write(self, obj: Path, document: Mapping[str, Any]) -> None:
        """Replace the side file atomically (``OSError`` for the caller to translate)."""
        side = self.path(obj)
        side.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=side.parent, prefix=f".{side.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(document, sort_keys=True).encode())
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp_name, side)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        self.old_path(obj).unlink(missing_ok=True)  # moved to the side tree

    def remove(self, obj: Path) -> None:
        self.path(obj).unlink(missing_ok=True)
        self.old_path(obj).unlink(missing_ok=True)


def retention_from(value: object) -> Retention | None:
    if not isinstance(value, dict):
        return None
    try:
        return Retention(str(value["mode"]), datetime.fromisoformat(str(value["retain_until"])))
    except (KeyError, ValueError) as exc:
        raise StorageError(f"unreadable retention record: {exc}") from exc


def sync_dir(folder: Path) -> None:
    """fsync a folder (a new name in it survives a crash); silently skipped where impossible."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the file itself is already on disk
    finally:
        os.close(fd)

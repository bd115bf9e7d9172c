"""The config ``recarchive demo`` leaves beside its archive, so every other command works on it.

``status``, ``verify``, ``show`` and ``export`` need only the storage (no vendor, no token);
``report`` and ``run`` talk to the vendors, here ``recarchive simulate``, whose accounts the file names
at ``--simulator-url`` (default: where ``recarchive simulate`` listens). No token value is written:
the file names each account's ``token_env`` and says how to set it; the demo prints the ``export``
lines (the simulator's tokens are fixed demo values, derived from its seed, not secrets of anyone's).

The file goes next to the archive folder as ``recarchive.toml`` (the name every command looks for by
default), unless a ``recarchive.toml`` that the demo did not write is there already: that one is
left alone and the demo's is named after the folder (``recarchive-demo.toml``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MARKER", "demo_config_path", "demo_config_text"]

MARKER = "# written by `recarchive demo`"


def demo_config_path(root: Path) -> Path:
    default = root.parent / "recarchive.toml"
    if not default.exists() or default.read_text(encoding="utf-8", errors="replace").startswith(MARKER):
        return default
    return root.parent / f"{root.name}.toml"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _rebased(value: Any, old: str, new: str) -> Any:
    """``value`` with the demo's own simulator URL replaced by the one the config points at."""
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old):]
    if isinstance(value, list):
        return [_rebased(v, old, new) for v in value]
    return value


def demo_config_text(root: Path, accounts: Iterable[Mapping[str, Any]], *, rendition: str, demo_url: str,
                     simulator_url: str, token_envs: Iterable[str]) -> str:
    """The TOML text: ``[storage]`` on ``root``, the demo's ``[transcode]``, and its accounts moved
    from the demo's short-lived simulator (``demo_url``) to ``simulator_url``."""
    simulator_url = simulator_url.rstrip("/")
    lines = [
        f"{MARKER} for the archive in {root}.",
        "# status, verify, show and export need nothing else. report and run talk to the vendors: here the",
        f"# simulator, which this file expects at {simulator_url}. Start it in another terminal:",
        "#     recarchive simulate" + ("" if simulator_url.endswith(":8080") else
                                      f" --port {simulator_url.rsplit(':', 1)[-1]}"),
        "# and set the token variables the accounts name (the demo printed the export lines; the",
        "# simulator's tokens are fixed demo values, the same on every machine):",
        *(f"#     export {name}=..." for name in token_envs),
        "",
        "[storage]",
        f"url = {_value(str(root))}",
        "",
        "[transcode]",
        f"rendition = {_value(rendition)}",
        'bitrate = "32k"',
    ]
    for account in accounts:
        lines += ["", "[[accounts]]"]
        lines += [f"{key} = {_value(_rebased(value, demo_url, simulator_url))}"
                  for key, value in account.items() if value is not None]
    return "\n".join(lines) + "\n"

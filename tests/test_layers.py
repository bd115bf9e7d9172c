"""The dependency rule of DESIGN.md, read from the imports themselves (an ``ast`` pass, no import).

    cli, tasks → daemon → compliance → pipeline → media → providers, storage → config → the core

The core is ``worker.errors``, ``worker.redact``, ``worker.logs`` (standard library only) and the
``worker`` package itself (its version). Every import — at module level, inside a function, or under
``TYPE_CHECKING`` — must point down or sideways within its own layer; ``providers`` and ``storage``
know nothing of each other. The few allowed exceptions are named below with their reason.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "providers", "storage", "worker", "tasks")

#: layer of a module prefix (the longest matching prefix wins); a higher layer may import a lower one
LAYERS: dict[str, int] = {
    "worker.errors": 0, "worker.redact": 0, "worker.logs": 0, "worker": 0,
    "config": 1,
    "providers": 2, "storage": 2,
    "worker.media": 3,
    "worker.pipeline": 4,
    "worker.compliance": 5,
    "worker.daemon": 6,
    "worker.cli": 7, "tasks": 7,
}
#: siblings in one layer that must not import each other
APART = {("providers", "storage"), ("storage", "providers"), ("worker.cli", "tasks"), ("tasks", "worker.cli")}

#: (importer prefix, imported prefix): why the arrow may point up
ALLOWED = {
    ("worker", "tasks.app"): "`celery -A worker` finds the app as worker.app; the import is lazy (__getattr__)",
    ("config.settings", "providers"): "provider names are validated against the one registry (a plain dict "
                                      "of names; importing it loads no vendor module)",
    ("providers.simulator", "worker.media"): "the simulator (demo and test tooling) makes media with our ffmpeg",
}

CORE_STDLIB_ONLY = ("worker.errors", "worker.redact", "worker.logs")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_key(module: str) -> str | None:
    best = None
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            for alias in node.names:  # ``from worker import media`` names a module
                found.append((node.lineno, f"{target}.{alias.name}"))
    return found


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def test_every_import_points_down() -> None:
    broken: list[str] = []
    for path in _sources():
        module = _module_name(path)
        mine = _layer_key(module)
        assert mine is not None, f"{module} has no layer: add its package to LAYERS"
        for line, target in _imports(path, module):
            if not _ours(target):
                continue
            theirs = _layer_key(target)
            if theirs is None:
                continue  # ``from worker import __version__`` style names resolve to the package layer
            if any((module == a or module.startswith(a + ".")) and (target == b or target.startswith(b + "."))
                   for a, b in ALLOWED):
                continue
            up = LAYERS[theirs] > LAYERS[mine]
            apart = (mine.split(".")[0] if mine in ("providers", "storage") else mine,
                     theirs.split(".")[0] if theirs in ("providers", "storage") else theirs) in APART
            if up or apart:
                broken.append(f"{path.relative_to(ROOT)}:{line}: {module} ({mine}) imports {target} ({theirs})")
    assert not broken, "imports against the layer rule:\n" + "\n".join(broken)


@pytest.mark.parametrize("core", CORE_STDLIB_ONLY)
def test_the_core_uses_the_standard_library_only(core: str) -> None:
    path = ROOT / (core.replace(".", "/") + ".py")
    outside = [f"{core}:{line} imports {target}" for line, target in _imports(path, core)
               if target.split(".")[0] not in sys.stdlib_module_names and target.split(".")[0] != "__future__"
               and not target.startswith(CORE_STDLIB_ONLY)]
    assert not outside, "\n".join(outside)


def test_lower_packages_take_only_the_core_from_worker() -> None:
    broken = []
    for path in _sources():
        module = _module_name(path)
        if not module.startswith(("config", "storage", "providers")) or module.startswith("providers.simulator"):
            continue
        for line, target in _imports(path, module):
            if target.startswith("worker.") and not target.startswith(CORE_STDLIB_ONLY) \
                    and target != "worker.__version__":
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not broken, "\n".join(broken)


def test_the_rule_itself_catches_an_upward_import(tmp_path: Path) -> None:
    """A test that could not fail proves nothing: an upward arrow written into a copy is found."""
    probe = ROOT / "storage" / "_layer_probe_tmp.py"
    probe.write_text("from worker.pipeline.archive import archive_recording\n", encoding="utf-8")
    try:
        with pytest.raises(AssertionError, match="_layer_probe_tmp"):
            test_every_import_points_down()
    finally:
        probe.unlink()


def test_no_module_is_over_the_size_bound() -> None:
    """STYLE.md §12: modules under ~400 lines (the simulator's catalogue and tests excepted)."""
    large = [f"{p.relative_to(ROOT)}: {n} lines" for p in _sources()
             if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450]
    assert not large, "\n".join(large)


def test_one_sorted_provider_registry_validates_the_config() -> None:
    from config.settings import AccountSettings
    from providers import PROVIDERS

    assert list(PROVIDERS) == sorted(PROVIDERS)
    with pytest.raises(ValueError, match="is not one of convirza, convoso, envoy, salesloft, siro"):
        AccountSettings(name="a", provider="acme", base_url="https://api.example.com", token_env="T",
                        start="2026-01-01T00:00:00Z")  # type: ignore[arg-type]

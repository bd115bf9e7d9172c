"""``recarchive simulate``: serve the vendor simulator for trying things out and for tests."""

from __future__ import annotations

import click

from worker.cli._common import unused_config_option

__all__ = ["simulate"]


@click.command()
@unused_config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port (0 = any free).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the demo dataset and tokens.")
def simulate(config_file: str | None, host: str, port: int, seed: int) -> None:
    """Serve all five vendor APIs, their media and their failure modes (demo dataset)."""
    from providers.simulator import serve

    serve(host, port, seed=seed)

"""``recarchive demo``: the whole job end to end with nothing to set up.

Starts the built-in simulator on a free loopback port, archives its recordings for all five vendors
into a local folder, and prints a table per vendor. No Redis, no S3 account, no config file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from config import settings_from_mapping
from worker.cli._common import EXIT_FAILED, EXIT_OK, guarded, unused_config_option
from worker.cli._democonfig import demo_config_path, demo_config_text
from worker.cli._output import stdout_console
from worker.cli._render import human_bytes, print_summary
from worker.cli._session import session
from worker.logs import setup_logging
from worker.pipeline.passes import run_pass

__all__ = ["demo"]

VENDORS = ("convirza", "convoso", "salesloft", "envoy", "siro")


@click.command()
@unused_config_option
@click.option("--dir", "directory", type=click.Path(file_okay=False), default="recarchive-demo",
              show_default=True, help="Folder to archive into.")
@click.option("--rendition", type=click.Choice(["none", "mp3", "opus", "flac"]), default="mp3", show_default=True,
              help="Compact rendition to add beside each original.")
@click.option("--simulator-url", default="http://127.0.0.1:8080", show_default=True,
              help="Where the config left beside the archive expects `recarchive simulate` (for report and run).")
@guarded
def demo(config_file: str | None, directory: str, rendition: str, simulator_url: str) -> None:
    """Archive every recording of the built-in simulator (all five vendors) into a local folder, and
    leave a recarchive.toml beside it so status, verify, show, export and report work on it."""
    from providers.simulator import Simulator
    from providers.simulator.demo import demo_accounts, demo_dataset

    setup_logging()
    console = stdout_console()
    root = Path(directory).resolve()
    with Simulator() as sim:
        demo_dataset(sim)
        accounts = demo_accounts(sim)
        data = {
            "storage": {"url": str(root)},
            "transcode": {"rendition": rendition, "bitrate": "32k"},
            "accounts": accounts,
        }
        settings = settings_from_mapping(data, sim.environ())
        console.print(f"simulator at {sim.url}; archiving into {root}")
        with session(settings, concurrency=4) as ctx:
            first = run_pass(ctx, settings.accounts, concurrency=4)
            print_summary(first, console, title="demo: first pass")
            # the second pass re-lists everything since the accounts' start, not only the lookback:
            # every recording must come back "unchanged" with nothing written
            earliest = min(account.start for account in settings.accounts)
            second = run_pass(ctx, settings.accounts, since=earliest, concurrency=4)
        total = sum(a.bytes for a in first.accounts)
        written = sum(a.bytes for a in second.accounts)
        console.print(f"first pass stored {human_bytes(total)}; second pass wrote {written} bytes "
                      f"({second.total('unchanged')} recordings already archived, nothing rewritten)")
        console.print(f"look inside: {root}/<provider>/<account>/YYYY/MM/DD/<id>/metadata.json")
        config = demo_config_path(root)
        config.write_text(demo_config_text(root, accounts, rendition=rendition, demo_url=sim.url,
                                           simulator_url=simulator_url, token_envs=sim.environ()), encoding="utf-8")
        _explain(console, config, simulator_url, sim.environ())
    sys.exit(EXIT_FAILED if first.failed else EXIT_OK)


def _explain(console: Console, config: Path, simulator_url: str, environ: dict[str, str]) -> None:
    """How to go on with the demo archive: the config left beside it, and the simulator's tokens."""
    port = simulator_url.rstrip("/").rsplit(":", 1)[-1]
    console.print(f"config for this archive: {escape(str(config))}")
    console.print(f"  recarchive status --config {escape(str(config))}   (verify, show, export: no token needed)")
    console.print(f"  for report and run, start the simulator: recarchive simulate --port {port}")
    console.print("  and set its (fixed, demo-only) tokens:")
    for name, value in environ.items():
        console.out(f"export {name}={value}", highlight=False)

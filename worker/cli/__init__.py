"""The ``recarchive`` command line (CONTRACT §1). One module per command."""

from __future__ import annotations

import click

from worker import __version__
from worker.cli.demo import demo
from worker.cli.doctor import doctor
from worker.cli.export import export
from worker.cli.hold import hold
from worker.cli.rearchive import rearchive
from worker.cli.report import report
from worker.cli.run import run
from worker.cli.show import show
from worker.cli.simulate import simulate
from worker.cli.status import status
from worker.cli.verify import verify

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recarchive")
def cli() -> None:
    """recarchive: archive call recordings, unaltered and provable, to S3-compatible storage."""


for command in (run, rearchive, verify, hold, status, report, doctor, demo, simulate):
    cli.add_command(command)
for command in (show, export):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="recarchive")

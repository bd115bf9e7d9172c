"""The vendor simulator: Convoso, Salesloft, Convirza, Envoy and Siro over real HTTP on loopback,
with real media, signed expiring links, switchable faults and a control API.

Used by ``recarchive demo``, ``recarchive simulate`` and the integration tests::

    with Simulator(link_ttl=60) as sim:
        sim.add("convirza", 3, kind="wav")
        account = sim.account("convirza")          # an [[accounts]] mapping
        os.environ.update(sim.environ())            # the tokens its token_env names
"""

from __future__ import annotations

from providers.simulator.catalog import API_FAULTS, MEDIA_FAULTS, STATES, VENDORS, SimOptions, SimRecording, SimRequest
from providers.simulator.core import DEFAULT_KINDS, DEFAULT_TTL, Simulator
from providers.simulator.demo import demo_dataset, serve
from providers.simulator.media import make_media, sniff_kind

__all__ = [
    "API_FAULTS",
    "DEFAULT_KINDS",
    "DEFAULT_TTL",
    "MEDIA_FAULTS",
    "STATES",
    "VENDORS",
    "SimOptions",
    "SimRecording",
    "SimRequest",
    "Simulator",
    "demo_dataset",
    "make_media",
    "serve",
    "sniff_kind",
]

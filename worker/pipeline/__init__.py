"""The pipeline: one recording from the vendor's listing to its commit in storage.

discover a window (``discovery``) → triage → download with retries (``download`` over ``fetch``,
every hop through ``mediapolicy``) → sniff and check before storing (``sniff``, ``check``) → put the
original in place (``claim``/``commit``) → rendition → ``metadata.json`` last (the commit) → observers
(``hooks``). ``passes`` is the orchestration core that ``recarchive run`` and the daemon share;
``ledger`` keeps a pass's outcome in bounded memory; ``state`` is what outlives a process.
"""

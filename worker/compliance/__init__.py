"""Compliance: what an auditor relies on, built over the pipeline — daily hash-chained manifests,
the id index, retention and legal holds, fixity checks (``verify``), completeness (``report``),
finding and handing over one recording (``show``, ``export``), and the walker over the archive."""

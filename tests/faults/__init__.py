"""Fault-injection suite (issue 8 §1): SIGKILLed runs and workers, a flushed Redis, a failing S3 behind
a fault proxy, vendor storms; every scenario ends with ``invariants.ArchiveChecker``. Select it with
``-m faults``; the table of results is printed at the end of the pytest run."""

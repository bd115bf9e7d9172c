"""The security suite (issue 8 §2): foreign media hosts refused, ids kept inside the key layout, no
secret anywhere, hostile bodies bounded, and vendor JSON parsers that only ever raise our own errors."""

"""Messages and their event ledger: the send path (filled in by the send-path issue)."""

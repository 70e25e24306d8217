"""The evidence bundle: one archive of a scan an auditor can verify, and its verification."""

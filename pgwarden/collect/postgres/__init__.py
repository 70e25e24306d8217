"""Reading one PostgreSQL server's catalogs, settings and sessions as a least-privilege auditor."""

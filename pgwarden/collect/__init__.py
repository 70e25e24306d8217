"""Config to Snapshot: everything that talks to PostgreSQL or Azure."""

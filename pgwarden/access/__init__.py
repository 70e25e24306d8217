"""PostgreSQL effective-access semantics: role graph, ACLs, paths, remediation SQL, tenancy."""

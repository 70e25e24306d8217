"""PostgreSQL's effective-access semantics: role graph, ACLs, paths, remediation SQL, the tenancy map applied."""

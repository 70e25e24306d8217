"""The pgwarden command: thin click commands, terminal output, the demo and map drafting."""

"""Reading a Flexible Server's Azure side (ARM, Key Vault, Monitor) with the cloud's credentials."""

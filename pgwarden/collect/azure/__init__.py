"""Reading a Flexible Server's Azure side: ARM, Key Vault and Monitor, with the cloud's credentials."""

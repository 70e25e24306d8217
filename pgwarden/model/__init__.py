"""Plain typed data at the pipeline's boundaries (config, snapshot, results, errors); no I/O."""

"""Plugin kernel: hook specifications, typed records, the manager and registries."""

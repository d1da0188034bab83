"""The host registry: add, list, check and remove ESXi hosts."""

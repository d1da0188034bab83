"""VM-level rules shared by the CLI and the workers: names, sizes, requests."""

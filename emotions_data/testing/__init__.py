"""Generated media and manifests for tests, benchmarks and the demo."""

"""The example plug-in of the spec (example_readnoise_module)."""

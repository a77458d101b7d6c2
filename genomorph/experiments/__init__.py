"""genomorph's jobs: protocols, benchmarks, demo stages and command parsers, which use the models only through the model contract (`genomorph.model`)."""

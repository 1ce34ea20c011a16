"""One file per explanation method; each defines one `Explainer` subclass named in the registry."""

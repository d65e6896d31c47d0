"""swim_py: SWIM membership wire-compatible with foca 1.0."""

"""The pure domain: typed catalog, cross-reference rules and views. No IO, no printing."""

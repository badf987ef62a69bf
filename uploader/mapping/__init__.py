"""Mapping layer: source rows -> Conversions API events."""

"""Placeholder replaced by the GGUF importer."""
GGUF_PRESETS: dict[str, str] = {}

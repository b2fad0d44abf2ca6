"""compose line."""

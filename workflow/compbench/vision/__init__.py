"""vision line."""

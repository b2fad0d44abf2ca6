"""fusion line."""

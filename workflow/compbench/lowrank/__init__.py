"""lowrank line."""

"""calibration_study line."""

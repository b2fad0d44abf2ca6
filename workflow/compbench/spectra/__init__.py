"""spectra line."""

"""Disclosure control of the whole release (the manifest of released cells, the views the
reports take their numbers from) and the two data packages."""

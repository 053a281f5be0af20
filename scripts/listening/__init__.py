"""Library behind the listening-test command lines: :mod:`.pairs`, :mod:`.store`, :mod:`.server`, :mod:`.analysis`."""

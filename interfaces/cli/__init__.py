"""The ``agentry`` command."""

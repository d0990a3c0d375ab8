"""siemforge: one detection rule, compiled to every SIEM, with proof of what it catches."""

__version__ = "0.1.0"

"""The backend plugin interface, discovery, precision, the shipped weights."""

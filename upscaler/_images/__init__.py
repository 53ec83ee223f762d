"""Files: decoding and encoding with metadata, animations, storage of URLs."""

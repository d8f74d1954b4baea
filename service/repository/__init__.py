"""The model repository on disk: version folders, metadata and file checksums."""

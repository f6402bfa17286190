"""Content pieces: download, bulk pipeline, safe paths, manifest."""

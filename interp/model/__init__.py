"""Loading a model into its handle, which layers take edits, the fast decoding path, generation."""

"""Read-only analyses over the store, profiles and segments: the numbers the UI charts."""

"""rm package."""

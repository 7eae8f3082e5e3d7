"""What the village work groups read, one module per language (Chinese is what they get)."""

"""Small utilities every layer may use: prototxt text."""

"""Storage: the ports by aggregate (ports.py) and the SQLite implementation (sqlite.py)."""

"""The people's side in a browser: the secretaries' live dashboard and the family view."""

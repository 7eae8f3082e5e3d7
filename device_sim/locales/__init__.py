"""What testers read in `bidao sim phones received`: one module of words per language."""

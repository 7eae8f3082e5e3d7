"""The JSON API under /api/v1: sign-in, the grid, people, devices, tickets and figures."""

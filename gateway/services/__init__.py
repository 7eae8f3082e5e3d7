"""Application services: tickets, the outbox sender, grid import and reports, over the ports."""

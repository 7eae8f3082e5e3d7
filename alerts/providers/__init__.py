"""Notification providers; each provider SDK is imported only inside its own module."""

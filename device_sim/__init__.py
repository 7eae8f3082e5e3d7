"""Simulated call boxes and water meters that speak protocol v1 over MQTT or a serial line."""

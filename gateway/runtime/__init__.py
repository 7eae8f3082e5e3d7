"""The gateway at run time: composition, supervision of its parts, health, start-up and stop."""

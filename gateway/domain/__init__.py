"""The pure domain: state, commands and the time in; effects out. No I/O, no store, no clocks."""

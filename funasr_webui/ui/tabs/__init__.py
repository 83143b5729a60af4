"""One module per tab: ``create_<tab>(ctx)`` draws it, wires its events and returns its components."""

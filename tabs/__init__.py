"""One module per tab: UI components and event wiring only; every decision is a `services` call."""

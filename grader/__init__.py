"""Checks of lab results: one module of checks per lab, and the core that runs and reports them."""

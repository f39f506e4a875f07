"""Alerts (raised once per episode, resolved by themselves) and the channels they go to."""

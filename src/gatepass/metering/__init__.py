"""Metering: prices of model tokens and the cost of a request."""

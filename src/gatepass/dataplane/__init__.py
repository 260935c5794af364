"""The data plane: the gateway that agents call instead of the provider APIs."""

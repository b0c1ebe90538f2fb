"""Code shared by the gateway and the model services."""

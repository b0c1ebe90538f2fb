"""The ASR service's routes, one module per API family (discovery and health come from ``shared``)."""
